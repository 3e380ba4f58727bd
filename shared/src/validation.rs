//! Validation used before anything is sent or stored, with field-level messages.
