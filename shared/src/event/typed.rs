//! Typed views of `alert.*` and `enrolment.*` events over the models. (Owned by the models work.)
