"""Probe: would storing a segment's rows in Morton (Z) order of their locations speed up
the exact scan of a radius filter's rows? For each bucket's queries it counts the contiguous
runs the matching rows form in Morton order and times gathering them (np.take) in storage
order vs Morton order.

Usage: OPENBLAS_NUM_THREADS=1 python morton_order_probe.py DATA_DIR
(DATA_DIR in the geonames layout: vectors.f16.npy, places.csv, queries.dev.jsonl, e.g. a
`bench_recall --export-synth` folder)."""
import csv
import json
import sys
import time

import numpy as np

D = sys.argv[1] if len(sys.argv) > 1 else '/work/synth-lowrank-1m-v2'
X=np.load(D+'/vectors.f16.npy')  # in RAM, 1 GB
lat=[];lon=[]
with open(D+'/places.csv') as f:
    r=csv.reader(f); next(r)
    for row in r: lat.append(float(row[1])); lon.append(float(row[2]))
lat=np.array(lat); lon=np.array(lon)
def morton(lat, lon, bits=16):
    y=((lat+90)/180*(2**bits-1)).astype(np.uint64); x=((lon+180)/360*(2**bits-1)).astype(np.uint64)
    def spread(v):
        v=v & np.uint64(0xFFFF)
        v=(v | (v<<np.uint64(8))) & np.uint64(0x00FF00FF)
        v=(v | (v<<np.uint64(4))) & np.uint64(0x0F0F0F0F)
        v=(v | (v<<np.uint64(2))) & np.uint64(0x33333333)
        v=(v | (v<<np.uint64(1))) & np.uint64(0x55555555)
        return v
    return spread(x) | (spread(y)<<np.uint64(1))
order=np.argsort(morton(lat,lon), kind='stable')   # new row i holds old row order[i]
pos=np.empty_like(order); pos[order]=np.arange(len(order))  # old row -> new position
Xs=X[order]
R=6371.0088
def hav_mask(q):
    f=q['filter']['radius']; la,lo,km=np.radians(f['lat']),np.radians(f['lon']),f['km']
    a=np.sin((np.radians(lat)-la)/2)**2+np.cos(la)*np.cos(np.radians(lat))*np.sin((np.radians(lon)-lo)/2)**2
    return 2*R*np.arcsin(np.sqrt(np.minimum(a,1)))<=km
qs=[json.loads(l) for l in open(D+'/queries.dev.jsonl')]
for sel in (0.1,0.01,0.001):
    sub=[q for q in qs if q['filter'] and abs(np.log(q['selectivity'])-np.log(sel))<0.5][:20]
    t_orig=t_sorted=0; runs=0; n=0
    for q in sub:
        m=hav_mask(q); old=np.nonzero(m)[0]; new=np.sort(pos[old])
        v=np.asarray(q['vector'],np.float32).astype(np.float16)
        t=time.perf_counter(); s1=np.take(X,old,axis=0); t_orig+=time.perf_counter()-t
        t=time.perf_counter(); s2=np.take(Xs,new,axis=0); t_sorted+=time.perf_counter()-t
        runs+=1+np.count_nonzero(np.diff(new)!=1); n+=len(new)
    print(f"sel {sel}: rows/query {n/len(sub):.0f}, contiguous runs/query {runs/len(sub):.0f}, gather (copy) storage order {t_orig/len(sub)*1e3:.2f} ms, morton order {t_sorted/len(sub)*1e3:.2f} ms")
