//! Points on the sphere and their validation.
