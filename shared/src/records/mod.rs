//! Records the ports carry, below both the domain logic that builds them and the ports that
//! store them (so neither imports the other in a circle). Plain data and simple questions about
//! it; the rules that change them live in `domain`.
pub mod alert;
pub mod bookkeeping;
pub mod enrolment;
pub mod matching;
pub mod refund_hook;
