//! Progress bars for long reads (`export`, `routes --openapi/--asyncapi`, `recordings diff`):
//! drawn on stderr only when it is a terminal, so piped and redirected runs stay clean.
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `unit` up to `len` (0 when unknown yet), hidden unless stderr is a terminal.
pub(crate) fn bar(len: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if std::io::stderr().is_terminal() {
        let template = format!("{{bar:40}} {{pos}}/{{len}} {unit} {{eta}}");
        bar.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}
