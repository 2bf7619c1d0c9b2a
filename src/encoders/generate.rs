//! Caption generation with ClipCap: greedy (ClipCap's `generate2`) and beam search
//! (`generate_beam`), ported from rmokady/CLIP_prefix_caption `predict.py` (HEAD 1ad805a),
//! with GPT-2 run incrementally over a key/value cache instead of re-running the whole
//! sequence for every token (the same logits: `tests/encoders_clipcap.rs`).
//!
//! Rules, as the reference's:
//!
//! - greedy (`generate2`, temperature 1): the next token is the arg-max of the last
//!   position's logits (its top-p 0.8 filter never removes the arg-max, so it changes
//!   nothing; ties go to the lowest id, as `torch.argmax`); generation stops after the stop
//!   token (kept in the output) or after `max_tokens` tokens (`entry_length`, 67).
//! - beam (`generate_beam`, width `B`): log-probabilities `softmax(logits).log()` in f32; the
//!   first step takes the top `B` tokens; then every beam's score plus each token's
//!   log-probability, divided by the beam's length, and the top `B` of all `B x vocab`
//!   candidates (ties: lower flat index first). A stopped beam (its last token was the stop
//!   token) offers only token 0 at log-probability 0 and its length stops growing; a beam's
//!   score is kept as average x length. It ends when every beam has stopped or after
//!   `max_tokens` steps; each beam's text is its first `length` tokens, and the beams are
//!   returned best first by score / length.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::clipcap::ClipCapModel;
use super::gpt2::KvCache;
use super::EncodeError;

/// One generated caption.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Generated {
    /// The text (decoded, with the stop token).
    pub text: String,
    /// The token ids.
    pub tokens: Vec<u32>,
    /// Beam search: the reference's score, the sum of the tokens' log-probabilities over
    /// the length (higher is better); `None` for greedy.
    pub score: Option<f32>,
}

fn rows<B: Backend>(t: Tensor<B, 2>) -> Result<Vec<Vec<f32>>, EncodeError> {
    let [_, v] = t.dims();
    let data = t
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| EncodeError::Backend(format!("{e:?}")))?;
    Ok(data.chunks(v.max(1)).map(<[f32]>::to_vec).collect())
}

/// `logits.softmax(-1).log()` in f32 (-inf where the probability underflows).
pub fn log_softmax_ref(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().map(|&e| f64::from(e)).sum::<f64>() as f32;
    exps.into_iter().map(|e| (e / sum).ln()).collect()
}

/// The index of the largest value (the first of equal ones; NaN never wins).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] || v[best].is_nan() {
            best = i;
        }
    }
    best
}

/// The `k` largest values with their indices, largest first (ties: lower index first).
pub fn top_k(v: &[f32], k: usize) -> Vec<(f32, usize)> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    let cmp = |a: &usize, b: &usize| v[*b].total_cmp(&v[*a]).then(a.cmp(b));
    if k < idx.len() {
        idx.select_nth_unstable_by(k, cmp);
        idx.truncate(k);
    }
    idx.sort_by(cmp);
    idx.into_iter().map(|i| (v[i], i)).collect()
}

impl<B: Backend> ClipCapModel<B> {
    /// Checks that `max_tokens` fit GPT-2's positions after the prefix.
    fn check_len(&self, max_tokens: usize) -> Result<(), EncodeError> {
        let c = &self.config;
        let room = c.gpt2.n_positions - c.prefix_length;
        if max_tokens == 0 || max_tokens > room + 1 {
            return Err(EncodeError::Input(format!(
                "max tokens {max_tokens} out of range 1..={} (GPT-2's {} positions less the prefix of {})",
                room + 1,
                c.gpt2.n_positions,
                c.prefix_length
            )));
        }
        Ok(())
    }

    /// The logits after the prefix and after each of `tokens` (`tokens.len() + 1` rows):
    /// incrementally over the cache, or (`cached` false) by running the whole sequence at
    /// once, as the reference does at every step.
    pub fn logits(
        &self,
        embedding: &[f32],
        tokens: &[u32],
        cached: bool,
    ) -> Result<Vec<Vec<f32>>, EncodeError> {
        self.check_len(tokens.len() + 1)?;
        let gpt = &self.gpt.gpt;
        let prefix = self.prefix(embedding)?;
        if !cached {
            let mut x = prefix;
            if !tokens.is_empty() {
                let e = gpt.embed_tokens(tokens, &self.device).swap_dims(0, 1);
                x = Tensor::cat(vec![x, e], 1);
            }
            let mut cache = KvCache::new(gpt.n_layer());
            let h = gpt.forward_embeds(x, &mut cache);
            let p = self.config.prefix_length;
            let [_, s, d] = h.dims();
            let logits = gpt.all_logits(h.slice([0..1, p - 1..s, 0..d]));
            let [_, n, v] = logits.dims();
            return rows(logits.reshape([n, v]));
        }
        let mut cache = KvCache::new(gpt.n_layer());
        let mut out = Vec::with_capacity(tokens.len() + 1);
        let h = gpt.forward_embeds(prefix, &mut cache);
        out.extend(rows(gpt.last_logits(h))?);
        for &t in tokens {
            let h = gpt.forward_embeds(gpt.embed_tokens(&[t], &self.device), &mut cache);
            out.extend(rows(gpt.last_logits(h))?);
        }
        Ok(out)
    }

    /// Greedy decoding (ClipCap's `generate2`): the token ids.
    pub fn greedy(
        &self,
        embedding: &[f32],
        max_tokens: usize,
        stop: u32,
    ) -> Result<Vec<u32>, EncodeError> {
        self.check_len(max_tokens)?;
        let gpt = &self.gpt.gpt;
        let mut cache = KvCache::new(gpt.n_layer());
        let mut h = gpt.forward_embeds(self.prefix(embedding)?, &mut cache);
        let mut tokens = Vec::new();
        loop {
            let logits = rows(gpt.last_logits(h))?;
            let t = argmax(&logits[0]) as u32;
            tokens.push(t);
            if t == stop || tokens.len() == max_tokens {
                return Ok(tokens);
            }
            h = gpt.forward_embeds(gpt.embed_tokens(&[t], &self.device), &mut cache);
        }
    }

    /// Beam search (ClipCap's `generate_beam`): `(tokens, score)` best first.
    pub fn beam(
        &self,
        embedding: &[f32],
        beam: usize,
        max_tokens: usize,
        stop: u32,
    ) -> Result<Vec<(Vec<u32>, f32)>, EncodeError> {
        self.check_len(max_tokens)?;
        let vocab = self.config.gpt2.vocab_size;
        if beam == 0 || beam > vocab {
            return Err(EncodeError::Input(format!(
                "beam width {beam} out of range 1..={vocab}"
            )));
        }
        let gpt = &self.gpt.gpt;
        let mut cache = KvCache::new(gpt.n_layer());
        let h = gpt.forward_embeds(self.prefix(embedding)?, &mut cache);
        let first = log_softmax_ref(&rows(gpt.last_logits(h))?[0]);
        let top = top_k(&first, beam);
        let mut scores: Vec<f32> = top.iter().map(|t| t.0).collect();
        let mut tokens: Vec<Vec<u32>> = top.iter().map(|t| vec![t.1 as u32]).collect();
        let mut lengths = vec![1f32; beam];
        let mut stopped: Vec<bool> = tokens.iter().map(|t| t[0] == stop).collect();
        cache.select(&vec![0; beam], &self.device);
        for _ in 1..max_tokens {
            if stopped.iter().all(|&s| s) {
                break;
            }
            let last: Vec<u32> = tokens.iter().map(|t| t[t.len() - 1]).collect();
            let h = gpt.forward_embeds(gpt.embed_tokens(&last, &self.device), &mut cache);
            let logits = rows(gpt.last_logits(h))?;
            let mut avg = Vec::with_capacity(beam * vocab);
            for (b, row) in logits.iter().enumerate() {
                let mut lp = log_softmax_ref(row);
                if stopped[b] {
                    lp.iter_mut().for_each(|x| *x = f32::NEG_INFINITY);
                    lp[0] = 0.0;
                } else {
                    lengths[b] += 1.0;
                }
                avg.extend(lp.iter().map(|&l| (scores[b] + l) / lengths[b]));
            }
            let top = top_k(&avg, beam);
            let src: Vec<usize> = top.iter().map(|t| t.1 / vocab).collect();
            lengths = src.iter().map(|&s| lengths[s]).collect();
            tokens = top
                .iter()
                .zip(&src)
                .map(|(t, &s)| {
                    let mut row = tokens[s].clone();
                    row.push((t.1 % vocab) as u32);
                    row
                })
                .collect();
            scores = top.iter().zip(&lengths).map(|(t, &l)| t.0 * l).collect();
            stopped = src
                .iter()
                .zip(&tokens)
                .map(|(&s, t)| stopped[s] || t[t.len() - 1] == stop)
                .collect();
            cache.select(&src, &self.device);
        }
        let mut out: Vec<(Vec<u32>, f32)> = tokens
            .into_iter()
            .zip(scores.iter().zip(&lengths))
            .map(|(mut t, (&s, &l))| {
                t.truncate(l as usize);
                (t, s / l)
            })
            .collect();
        // scores.argsort(descending=True); equal scores keep beam order.
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(out)
    }
}
