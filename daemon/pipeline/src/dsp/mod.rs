//! Real-time filters and references.
//!
//! Two halves with different rules:
//!
//! - **Design**, on the control plane, in `f64`: [`design`] turns a [`FilterSpec`] into
//!   second-order sections ([`Sos`]) with the coefficients scipy.signal gives for the same
//!   request (`butter`, `cheby1`, `iirnotch`), so settings can be checked and recordings
//!   re-filtered offline with scipy and agree. [`sosfilt`] and [`sosfilt_zi`] are the
//!   double-precision reference filter.
//! - **Running**, on the acquisition thread, in `f32`: a [`FilterPlan`] (filters, common
//!   average and channel references, in order) compiled into structure-of-arrays banks of
//!   sections, run by a [`FilterStage`] without allocating, locking or blocking. Its
//!   [`FilterControl`] hands over a new plan, which takes over at a block boundary without a
//!   transient. Each section runs in state-variable form rather than direct form, the same
//!   transfer function with rounding `f32` can afford (`bank.rs` says why).
//!
//! Single precision at run time is deliberate: it halves the memory traffic and doubles the
//! vector width of the loop that touches every sample, and its 24-bit mantissa is far finer
//! than the amplifier's 0.195 µV step. Design stays in double precision, where rounding would
//! move poles.

mod bank;
mod complex;
mod design;
mod filter_stage;
mod mix;
mod pairing;
mod plan;
mod sos;

pub use design::{design, DesignError, FilterFamily, FilterKind, FilterSpec, MAX_ORDER, MAX_RIPPLE_DB};
pub use filter_stage::{FilterControl, FilterStage, Lane, ReplaceError};
pub use plan::{FilterPlan, PlanError};
pub use sos::{sosfilt, sosfilt_with_state, sosfilt_zi, Sos};
