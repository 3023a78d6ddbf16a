//! Benchmark results: statistics, the run's environment, and rendering.
//!
//! Shared by `pktio bench` (packets) and `pktio bench tcp`. A [`Cell`] is one
//! measured quantity for one combination of labels (for example engine =
//! `epoll`, conns = `8`, write = `64 KiB`, metric = `Gbit/s`) with the value of
//! every run. A [`Report`] holds the cells, the [`Environment`] they were
//! measured in and free-form notes, and renders as an aligned text table,
//! a Markdown table, JSON, or a self-contained SVG grouped bar chart.
//!
//! Statistics are pure functions: the median of an even number of samples is
//! the mean of the middle two; NaN samples are ignored.
//! Nothing here does I/O except [`Environment::detect`].
//!
//! The parts, each using only those before it: `stats` (median, min–max,
//! ratios, the source-bound marks), `cells` (labels, cells, environment,
//! the report and its JSON), `table` (the text and Markdown tables), `svg`
//! (the bar chart); `schema` names every JSON document pktio writes.

mod cells;
pub mod schema;
mod stats;
mod svg;
mod table;

pub use cells::{Cell, Environment, Labels, Report};
pub use stats::{bound_by_source, fmt_num, median, mostly, ratio, source_bound, Stats};
pub use table::{ratios_to_baseline, Table};
