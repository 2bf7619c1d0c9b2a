//! The CPU backend's tensors under burn's generic ones, for the kernels that work on their
//! buffers directly ([`super::activation`], [`super::attention`]).

use std::any::{Any, TypeId};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorPrimitive};
use burn_flex::FlexTensor;

/// The Flex tensor under `x` (sharing its buffer) when `B` is burn Flex and `x` is a float
/// tensor; `None` for any other backend or a quantised tensor. Once `x` is dropped, the
/// returned tensor owns the buffer alone (unless another clone of `x` lives).
pub(super) fn flex_of<B: Backend, const D: usize>(x: &Tensor<B, D>) -> Option<FlexTensor> {
    if TypeId::of::<B::FloatTensorPrimitive>() != TypeId::of::<FlexTensor>() {
        return None;
    }
    let TensorPrimitive::Float(t) = x.clone().into_primitive() else {
        return None;
    };
    let t: Box<dyn Any> = Box::new(t);
    t.downcast::<FlexTensor>().ok().map(|t| *t)
}

/// `t` as a tensor of `B`; `None` when `B` is not burn Flex.
pub(super) fn from_flex<B: Backend, const D: usize>(t: FlexTensor) -> Option<Tensor<B, D>> {
    let t: Box<dyn Any> = Box::new(t);
    let t = t.downcast::<B::FloatTensorPrimitive>().ok()?;
    Some(Tensor::from_primitive(TensorPrimitive::Float(*t)))
}
