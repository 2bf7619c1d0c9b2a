//! The commit protocol of a [`Store`]: segments and tombstones written and synced, read back
//! and validated, then the manifest swapped in by an atomic rename; compaction; removal of
//! the files no manifest references.

use std::borrow::Borrow;

use super::*;

impl Store {
    /// Makes all pending operations durable and visible, atomically. Returns the new
    /// generation (unchanged if nothing was pending).
    pub fn commit(&mut self) -> Result<u64, CommitError> {
        if self.poisoned {
            return Err(WriteError::Poisoned.into());
        }
        let snap = self.snapshot();
        if self.pending_len() == 0 && self.spilled.is_empty() {
            return Ok(snap.generation());
        }
        let mut m = snap.manifest().clone();
        m.version = MANIFEST_VERSION;
        let (last, next_file_no) = self.reserved.unwrap_or((m.generation, m.next_file_no));
        m.generation = next(last, "manifest generation")?;
        m.next_file_no = next_file_no;
        let generation = m.generation;
        for (name, dim) in &self.new_collections {
            m.collections.push(CollectionEntry {
                name: name.clone(),
                dim: *dim,
                metric: METRIC_COSINE,
                segments: Vec::new(),
                tombstones: Vec::new(),
                properties: BTreeMap::new(),
            });
        }
        for (name, changes) in &self.pending_props {
            let Some(entry) = m.collections.iter_mut().find(|c| &c.name == name) else {
                return Err(WriteError::UnknownCollection(name.clone()).into());
            };
            for (k, v) in changes {
                match v {
                    Some(v) => entry.properties.insert(k.clone(), v.clone()),
                    None => entry.properties.remove(k),
                };
            }
        }
        // The spilled segments first (older than this commit's), in the order written.
        for s in &self.spilled {
            let Some(entry) = m.collections.iter_mut().find(|c| c.name == s.collection) else {
                return Err(WriteError::UnknownCollection(s.collection.clone()).into());
            };
            entry.segments.push(s.entry);
        }
        let mut files = Vec::new();
        for (name, pending) in &self.pending {
            let old = snap.collection(name).ok();
            let Some(entry) = m.collections.iter_mut().find(|c| &c.name == name) else {
                return Err(WriteError::UnknownCollection(name.clone()).into());
            };
            // Borrowed: the pending rows stay as they are should the commit fail.
            let mut rows: Vec<&RowData> = pending.ops.values().flatten().collect();
            let spilled = |id: u64| {
                self.spilled
                    .iter()
                    .any(|s| &s.collection == name && s.ids.binary_search(&id).is_ok())
            };
            let mut deletes = Vec::new();
            for (id, op) in &pending.ops {
                if op.is_none() && (old.is_some_and(|c| c.contains(*id)) || spilled(*id)) {
                    deletes.push(*id);
                }
            }
            if !rows.is_empty() {
                self.stage_segment(
                    &mut m.next_file_no,
                    entry,
                    generation,
                    &mut rows,
                    &mut files,
                )?;
            }
            if !deletes.is_empty() {
                let file_no = m.next_file_no;
                m.next_file_no = next(file_no, "next file number")?;
                let bytes = encode_tombstones(&deletes);
                entry.tombstones.push(FileEntry {
                    file_no,
                    generation,
                    count: deletes.len() as u64,
                    size: bytes.len() as u64,
                    crc: crc32c::crc32c(&bytes),
                });
                files.push((tombstone_file_name(file_no), bytes));
            }
        }
        self.publish(m, files)?;
        self.pending.clear();
        self.pending_props.clear();
        self.new_collections.clear();
        self.spilled.clear();
        self.reserved = None;
        Ok(generation)
    }

    /// Writes the pending rows (adds and replacements; deletes stay pending) to segment
    /// files now, without publishing them: the next commit publishes them with everything
    /// else, atomically, and dropping the writer without a commit removes them. A
    /// transaction larger than memory spills every so many rows and commits once. Each
    /// spilled segment takes a generation of its own, so the commit that publishes `n`
    /// spilled segments advances the generation by `n + 1`.
    pub fn spill(&mut self) -> Result<(), CommitError> {
        if self.poisoned {
            return Err(WriteError::Poisoned.into());
        }
        let snap = self.snapshot();
        let (mut last, mut file_no) = self
            .reserved
            .unwrap_or((snap.generation(), snap.manifest().next_file_no));
        let names: Vec<String> = self.pending.keys().cloned().collect();
        for name in names {
            let Some(dim) = self.dim_of(&name) else {
                return Err(WriteError::UnknownCollection(name).into());
            };
            let Some(pending) = self.pending.get_mut(&name) else {
                continue;
            };
            let ids: Vec<u64> = pending
                .ops
                .iter()
                .filter(|(_, op)| op.is_some())
                .map(|(id, _)| *id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let generation = next(last, "manifest generation")?;
            let after = next(file_no, "next file number")?;
            let mut rows: Vec<RowData> = ids
                .iter()
                .filter_map(|id| pending.ops.remove(id).flatten())
                .collect();
            let written = self.write_spilled(&name, dim, generation, file_no, &mut rows);
            let entry = match written {
                Ok(e) => e,
                Err(e) => {
                    // Back into the pending operations: nothing is lost.
                    if let Some(p) = self.pending.get_mut(&name) {
                        for r in rows {
                            p.ops.insert(r.id, Some(r));
                        }
                    }
                    return Err(e);
                }
            };
            self.spilled.push(Spilled {
                collection: name.clone(),
                entry,
                ids,
            });
            (last, file_no) = (generation, after);
            self.reserved = Some((last, file_no));
            if self.pending.get(&name).is_some_and(|p| p.ops.is_empty()) {
                self.pending.remove(&name);
            }
        }
        Ok(())
    }

    /// Builds, writes and syncs one spilled segment.
    fn write_spilled(
        &self,
        name: &str,
        dim: usize,
        generation: u64,
        file_no: u64,
        rows: &mut [impl Borrow<RowData>],
    ) -> Result<FileEntry, CommitError> {
        self.sort_rows(rows);
        let (bytes, crc) = self.build_segment(name, dim, generation, rows)?;
        let file = segment_file_name(file_no);
        let d = &*self.dir;
        let io = |e| CommitError::io(d.describe(&file), e);
        if let Err(e) = d.write(&file, &bytes) {
            let _ = d.remove(&file);
            return Err(io(e));
        }
        if let Err(e) = d.sync(&file) {
            let _ = d.remove(&file);
            return Err(io(e));
        }
        Ok(FileEntry {
            file_no,
            generation,
            count: rows.len() as u64,
            size: bytes.len() as u64,
            crc,
        })
    }

    /// Puts `rows` in the configured row order.
    fn sort_rows<R: Borrow<RowData>>(&self, rows: &mut [R]) {
        match self.opts.row_order {
            RowOrder::Id => rows.sort_unstable_by_key(|r| r.borrow().id),
            RowOrder::Spatial => rows.sort_by_cached_key(|r| {
                let r = r.borrow();
                (crate::geo::hilbert_key(r.point), r.id)
            }),
        }
    }

    /// Commits pending operations, then merges all segments of `collection` into one,
    /// dropping deleted and replaced rows and all tombstones. Returns the new generation.
    pub fn compact(&mut self, collection: &str) -> Result<u64, CommitError> {
        self.commit()?;
        let snap = self.snapshot();
        let view = snap
            .collection(collection)
            .map_err(|_| WriteError::UnknownCollection(collection.to_string()))?;
        let Some(ci) = snap
            .manifest()
            .collections
            .iter()
            .position(|c| c.name == collection)
        else {
            return Err(WriteError::UnknownCollection(collection.to_string()).into());
        };
        let entry = &snap.manifest().collections[ci];
        if entry.segments.len() <= 1
            && entry.tombstones.is_empty()
            && view.segments().iter().all(|s| s.live_len() == s.len())
        {
            return Ok(snap.generation());
        }
        let mut rows = Vec::with_capacity(view.len());
        for item in view.iter() {
            let item = item.map_err(|e| match e {
                crate::storage::error::ReadError::Corrupt(c) => CommitError::Open(c.into()),
                other => CommitError::SectionBuilder(other.to_string()),
            })?;
            rows.push(RowData {
                id: item.id,
                vector: item.vector.to_vec(),
                point: item.point,
                time: item.time,
                payload: item.payload.map(str::to_string),
            });
        }
        let mut m = snap.manifest().clone();
        m.version = MANIFEST_VERSION;
        m.generation = next(m.generation, "manifest generation")?;
        let generation = m.generation;
        let mut files = Vec::new();
        let e = &mut m.collections[ci];
        e.segments.clear();
        e.tombstones.clear();
        if !rows.is_empty() {
            self.stage_segment(&mut m.next_file_no, e, generation, &mut rows, &mut files)?;
        }
        self.publish(m, files)?;
        Ok(generation)
    }

    /// Puts `rows` (unique ids) in the configured row order, builds their segment for
    /// `entry`'s collection under the next file number, records it in `entry` and queues
    /// its bytes in `files` (written by `publish`).
    fn stage_segment(
        &self,
        next_file_no: &mut u64,
        entry: &mut CollectionEntry,
        generation: u64,
        rows: &mut [impl Borrow<RowData>],
        files: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), CommitError> {
        self.sort_rows(rows);
        let file_no = *next_file_no;
        *next_file_no = next(file_no, "next file number")?;
        let (bytes, crc) = self.build_segment(&entry.name, entry.dim as usize, generation, rows)?;
        entry.segments.push(FileEntry {
            file_no,
            generation,
            count: rows.len() as u64,
            size: bytes.len() as u64,
            crc,
        });
        files.push((segment_file_name(file_no), bytes));
        Ok(())
    }

    /// Encodes a segment, running the registered section builders. Returns bytes and meta CRC.
    fn build_segment<R: Borrow<RowData>>(
        &self,
        collection: &str,
        dim: usize,
        generation: u64,
        rows: &[R],
    ) -> Result<(Vec<u8>, u32), CommitError> {
        let mut bytes = encode_segment(dim, generation, rows, &[])?;
        if !self.opts.section_builders.is_empty() {
            let aligned = AlignedBytes::from_slice(&bytes);
            // The builders read the aligned copy; the file image is made again with their
            // sections, so this one goes now (it would otherwise be held through the builds).
            drop(std::mem::take(&mut bytes));
            let base = Segment::open(Arc::new(aligned), "new segment")?;
            let mut extra = Vec::new();
            for b in &self.opts.section_builders {
                let mut more = b
                    .build(collection, &base)
                    .map_err(|e| CommitError::SectionBuilder(e.to_string()))?;
                extra.append(&mut more);
            }
            drop(base);
            bytes = encode_segment(dim, generation, rows, &extra)?;
        }
        let at = bytes.len() - SEGMENT_FOOTER_LEN as usize + 12;
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&bytes[at..at + 4]);
        Ok((bytes, u32::from_le_bytes(crc)))
    }

    /// The commit protocol: write + fsync new files, validate them, fsync the folder, write +
    /// fsync `MANIFEST.tmp`, rename it to `MANIFEST`, fsync the folder, then remove garbage.
    pub(super) fn publish(
        &mut self,
        m: Manifest,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<(), CommitError> {
        let d = &*self.dir;
        let io = |name: &str| {
            let desc = d.describe(name);
            move |e| CommitError::io(desc, e)
        };
        // Before the rename nothing refers to the new files: a failure removes them (a full
        // disk keeps no partial segment).
        let undo = |e: CommitError| {
            for (name, _) in &files {
                let _ = d.remove(name);
            }
            let _ = d.remove(MANIFEST_TMP_FILE);
            e
        };
        for (name, bytes) in &files {
            d.write(name, bytes).map_err(io(name)).map_err(undo)?;
        }
        for (name, _) in &files {
            d.sync(name).map_err(io(name)).map_err(undo)?;
        }
        // Reads the new files back through the directory and validates them.
        let snap =
            build_snapshot(d, m.clone(), Some(&self.snapshot())).map_err(|e| undo(e.into()))?;
        d.sync_dir().map_err(io("")).map_err(undo)?;
        d.write(MANIFEST_TMP_FILE, &m.encode())
            .map_err(io(MANIFEST_TMP_FILE))
            .map_err(undo)?;
        d.sync(MANIFEST_TMP_FILE)
            .map_err(io(MANIFEST_TMP_FILE))
            .map_err(undo)?;
        // From here on the new manifest may be on disk: a failure poisons the writer.
        self.poisoned = true;
        d.rename(MANIFEST_TMP_FILE, MANIFEST_FILE)
            .map_err(io(MANIFEST_FILE))?;
        d.sync_dir().map_err(io(""))?;
        self.poisoned = false;
        self.current.set(snap);
        self.collect_garbage();
        Ok(())
    }

    /// Best-effort removal of files no manifest references (left by compaction or by an
    /// interrupted commit). Open snapshots keep their mapped bytes.
    pub(super) fn collect_garbage(&self) {
        let snap = self.snapshot();
        let mut keep = std::collections::BTreeSet::new();
        for c in &snap.manifest().collections {
            for e in &c.segments {
                keep.insert(segment_file_name(e.file_no));
            }
            for e in &c.tombstones {
                keep.insert(tombstone_file_name(e.file_no));
            }
        }
        let Ok(names) = self.dir.list() else { return };
        for name in names {
            let ours = crate::storage::manifest::is_garbage_candidate(&name);
            if ours && !keep.contains(&name) && self.dir.remove(&name).is_err() {
                return;
            }
        }
    }
}
