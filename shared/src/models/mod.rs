//! Typed models of every ChargebackStop object in the API reference pages.
