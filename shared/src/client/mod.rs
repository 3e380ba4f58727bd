//! The typed ChargebackStop API client (reqwest + rustls).
