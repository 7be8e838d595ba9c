//! Progress for long evaluations: a spinner with the elapsed time on standard error,
//! shown only when stderr is a terminal and only once the work has taken a second, so
//! quick runs and pipes see nothing.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long work runs before the spinner appears.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// A spinner for one long step. Dropping it (or `finish`) clears the line.
pub struct Progress {
    bar: ProgressBar,
    /// Set when the work is done, so a spinner due to appear stays hidden.
    done: Arc<Mutex<bool>>,
}

impl Progress {
    /// Starts timing `message`; the spinner appears after [`SHOW_AFTER`] on a terminal.
    pub fn start(message: impl Into<String>) -> Progress {
        let terminal = std::io::stderr()
            .is_terminal()
            .then(ProgressDrawTarget::stderr);
        Progress::start_on(message.into(), terminal, SHOW_AFTER)
    }

    /// Starts timing `message`, drawing on `target` (if any) once `after` has passed.
    fn start_on(message: String, target: Option<ProgressDrawTarget>, after: Duration) -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message);
        let done = Arc::new(Mutex::new(false));
        if let Some(target) = target {
            let (bar, done) = (bar.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                std::thread::sleep(after);
                let done = done.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if !*done {
                    bar.set_draw_target(target);
                    bar.enable_steady_tick(Duration::from_millis(120));
                }
            });
        }
        Progress { bar, done }
    }

    /// Ends the step and clears the spinner's line.
    pub fn finish(self) {
        drop(self);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        let mut done = self
            .done
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *done = true;
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::InMemoryTerm;

    fn screen_after(run_for: Duration, show_after: Duration) -> String {
        let term = InMemoryTerm::new(4, 80);
        let target = ProgressDrawTarget::term_like(Box::new(term.clone()));
        let progress = Progress::start_on("evaluating 3 segments".into(), Some(target), show_after);
        std::thread::sleep(run_for);
        let during = term.contents();
        progress.finish();
        during
    }

    #[test]
    fn a_long_step_shows_a_spinner_with_its_message() {
        let screen = screen_after(Duration::from_millis(600), Duration::from_millis(20));
        assert!(screen.contains("evaluating 3 segments ("), "{screen:?}");
    }

    #[test]
    fn a_quick_step_shows_nothing() {
        let term = InMemoryTerm::new(4, 80);
        let target = ProgressDrawTarget::term_like(Box::new(term.clone()));
        Progress::start_on("quick".into(), Some(target), Duration::from_millis(200)).finish();
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(term.contents(), "");
    }
}
