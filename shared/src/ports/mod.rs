//! The traits the domain needs, named after what they do for it.
