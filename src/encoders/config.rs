//! Model hyper-parameters, with named presets.
//!
//! Defaults follow transformers' `CLIPTextConfig` / `CLIPVisionConfig`
//! (configuration_clip.py, transformers 5.24.0) and the `openai/clip-vit-base-patch32`
//! checkpoint's `config.json`.

/// Hyper-parameters of the CLIP vision tower (`CLIPVisionModelWithProjection`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClipVisionConfig {
    /// Transformer width (`hidden_size`).
    pub hidden_size: usize,
    /// MLP inner width (`intermediate_size`).
    pub intermediate_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads; must divide `hidden_size`.
    pub num_attention_heads: usize,
    /// Input side in pixels (square images).
    pub image_size: usize,
    /// Patch side in pixels; must divide `image_size`.
    pub patch_size: usize,
    /// Output width of `visual_projection` (`projection_dim`).
    pub projection_dim: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
}

impl ClipVisionConfig {
    /// CLIP ViT-B/32: width 768, 12 layers, 12 heads, MLP 3072, 224 px, patch 32, projection 512.
    pub fn vit_b32() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            image_size: 224,
            patch_size: 32,
            projection_dim: 512,
            layer_norm_eps: 1e-5,
        }
    }

    /// A tiny configuration used by the parity tests (`tools/make_encoder_goldens.py`):
    /// width 64, 2 layers, 4 heads, MLP 128, 64 px, patch 32, projection 512.
    pub fn tiny() -> Self {
        Self {
            hidden_size: 64,
            intermediate_size: 128,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            image_size: 64,
            patch_size: 32,
            projection_dim: 512,
            layer_norm_eps: 1e-5,
        }
    }

    /// Number of patches per image side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Number of positions: one class token plus one per patch.
    pub fn num_positions(&self) -> usize {
        self.grid() * self.grid() + 1
    }

    /// Checks that the shape parameters are consistent.
    pub fn validate(&self) -> Result<(), String> {
        if self.hidden_size == 0 || self.num_attention_heads == 0 || self.patch_size == 0 {
            return Err("zero-sized vision config".into());
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !self.image_size.is_multiple_of(self.patch_size) || self.image_size == 0 {
            return Err(format!(
                "image_size {} is not a positive multiple of patch_size {}",
                self.image_size, self.patch_size
            ));
        }
        Ok(())
    }
}

/// Hyper-parameters of the CLIP text tower (`CLIPTextModelWithProjection`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClipTextConfig {
    /// Vocabulary size (rows of `token_embedding`).
    pub vocab_size: usize,
    /// Transformer width (`hidden_size`).
    pub hidden_size: usize,
    /// MLP inner width (`intermediate_size`).
    pub intermediate_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads; must divide `hidden_size`.
    pub num_attention_heads: usize,
    /// Context length (`max_position_embeddings`).
    pub max_position_embeddings: usize,
    /// Output width of `text_projection` (`projection_dim`).
    pub projection_dim: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// The end-of-text id: the embedding is pooled at the FIRST position holding it.
    pub eos_token_id: u32,
}

impl ClipTextConfig {
    /// CLIP ViT-B/32 text tower: vocab 49408, width 512, 12 layers, 8 heads, MLP 2048,
    /// context 77, projection 512, end-of-text id 49407.
    pub fn vit_b32() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            projection_dim: 512,
            layer_norm_eps: 1e-5,
            eos_token_id: 49407,
        }
    }

    /// A tiny configuration used by the parity tests (`tools/make_encoder_goldens.py`): the
    /// real vocabulary (49408, end id 49407), width 16, 2 layers, 4 heads, MLP 32,
    /// context 77, projection 512.
    pub fn tiny() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            max_position_embeddings: 77,
            projection_dim: 512,
            layer_norm_eps: 1e-5,
            eos_token_id: 49407,
        }
    }

    /// Checks that the shape parameters are consistent.
    pub fn validate(&self) -> Result<(), String> {
        if self.hidden_size == 0 || self.num_attention_heads == 0 {
            return Err("zero-sized text config".into());
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if (self.eos_token_id as usize) >= self.vocab_size {
            return Err(format!(
                "eos_token_id {} outside the vocabulary ({})",
                self.eos_token_id, self.vocab_size
            ));
        }
        Ok(())
    }
}

/// Hyper-parameters of Sat2Cap's dynamic encoder (GeoNet).
#[derive(Debug, Clone, PartialEq)]
pub struct GeoNetConfig {
    /// Hidden width (64 in the reference).
    pub hidden: usize,
    /// Output width; must equal the overhead projection width (512).
    pub output: usize,
}

impl GeoNetConfig {
    /// The reference GeoNet: Linear(12, 64) -> ReLU -> Linear(64, 512).
    pub fn sat2cap() -> Self {
        Self {
            hidden: 64,
            output: 512,
        }
    }
}
