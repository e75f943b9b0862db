//! Whether PostgreSQL plans a statement of the engine for its bound values or reuses one
//! generic plan, chosen by measuring both.
//!
//! The driver prepares each statement once per connection. A *custom* plan is made for the
//! bound values at every run; a *generic* plan is made once, without them, and reused.
//! PostgreSQL's own choice (`plan_cache_mode = auto`) compares the generic plan's estimated
//! cost with the custom plans', and the estimate is wrong for tally's statements: a range on
//! a bound value (`order_time <= $1`, the `asOf` cut) is guessed to keep a third of the rows,
//! where `asOf` most often keeps them all, so the generic plan looks cheaper and is chosen,
//! then reads every row with a plan made for a third of them (the shop's net sales and orders
//! by day at demo scale 1: 48–54 ms generic, 31–36 ms custom). Planning for the values is not
//! free either: a statement of a few milliseconds, or one embedding long SQL tables (the saas
//! journey), spends more planning at every run than the generic plan loses.
//!
//! So the engine measures, per statement (kept with it in the plan cache): its first [`SAMPLES`] runs are planned for
//! their values (`force_custom_plan`), the next [`SAMPLES`] with the generic plan
//! (`force_generic_plan`), and from then on each run takes the mode whose fastest run was
//! faster (the fastest, because the machine's load only ever adds time), except one run in
//! [`EXPLORE_EVERY`], which takes the other mode: a connection plans the generic plan at its
//! first generic run, so the first generic samples carry a planning each, and later ones
//! show what the reused plan costs. Runs started before both modes have a sample are planned
//! for their values. Every [`RESAMPLE_EVERY`] runs the samples are dropped and both modes
//! sampled again (data grows, indexes are added). The statement's time is the database's as
//! the engine measures it (the statement and its transaction, as `extensions.explain`'s
//! `dbMillis`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Runs of each mode measured before choosing.
pub(super) const SAMPLES: u64 = 3;

/// Runs between two samplings of a statement.
pub(super) const RESAMPLE_EVERY: u64 = 1000;

/// One run in this many takes the mode not chosen, once both are sampled.
pub(super) const EXPLORE_EVERY: u64 = 16;

/// How the database plans one run of a statement (PostgreSQL's `plan_cache_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlanMode {
    /// Planned for its bound values at every run (`force_custom_plan`).
    Custom,
    /// One plan without the values, reused (`force_generic_plan`).
    Generic,
}

impl PlanMode {
    /// The value of `plan_cache_mode` for this mode.
    pub(super) fn setting(self) -> &'static str {
        match self {
            PlanMode::Custom => "force_custom_plan",
            PlanMode::Generic => "force_generic_plan",
        }
    }

    /// The mode's name in `extensions.explain` (`planMode`): `custom` or `generic`.
    pub(super) fn name(self) -> &'static str {
        match self {
            PlanMode::Custom => "custom",
            PlanMode::Generic => "generic",
        }
    }
}

/// Why a run takes its mode (`planReason` in `extensions.explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// One of the first runs of a sampling: the `n`th (from 1) of [`SAMPLES`] of its mode.
    Sampling(u64),
    /// The chosen mode: the fastest runs of each mode so far, in microseconds (`None`: no
    /// run of that mode measured yet).
    Faster {
        custom: Option<u64>,
        generic: Option<u64>,
    },
    /// The one run in [`EXPLORE_EVERY`] that takes the mode not chosen.
    Exploring,
}

/// The mode of one run of a statement, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Run {
    /// How the database plans the run.
    pub mode: PlanMode,
    /// Why.
    pub why: Why,
}

impl Run {
    /// Why, in words, for `extensions.explain`.
    pub(super) fn reason(&self) -> String {
        let ms = |us: Option<u64>| match us {
            Some(us) => format!("{:.1} ms", us as f64 / 1000.0),
            None => "not measured yet".to_owned(),
        };
        match self.why {
            Why::Sampling(n) => format!(
                "sampling: run {n} of {SAMPLES} planned {}, before choosing the faster mode",
                match self.mode {
                    PlanMode::Custom => "for its values",
                    PlanMode::Generic => "generically",
                }
            ),
            Why::Faster { custom, generic } => format!(
                "{}: fastest custom run {}, fastest generic run {}",
                if custom.is_some() && generic.is_some() {
                    "faster so far"
                } else {
                    "planned for its values until both modes have a measured run"
                },
                ms(custom),
                ms(generic)
            ),
            Why::Exploring => {
                format!("exploring: one run in {EXPLORE_EVERY} tries the mode not chosen")
            }
        }
    }
}

/// The measured choice of one statement.
#[derive(Debug)]
pub(super) struct PlanChoice {
    runs: AtomicU64,
    /// Fastest run of each mode in this sampling, in microseconds (`u64::MAX`: none yet).
    custom: AtomicU64,
    generic: AtomicU64,
}

impl Default for PlanChoice {
    fn default() -> Self {
        PlanChoice {
            runs: AtomicU64::new(0),
            custom: AtomicU64::new(u64::MAX),
            generic: AtomicU64::new(u64::MAX),
        }
    }
}

impl PlanChoice {
    /// The mode of the next run, and why.
    pub(super) fn next(&self) -> Run {
        let n = self.runs.fetch_add(1, Ordering::Relaxed) % RESAMPLE_EVERY;
        if n == 0 {
            // a new sampling: the earlier samples no longer count
            self.custom.store(u64::MAX, Ordering::Relaxed);
            self.generic.store(u64::MAX, Ordering::Relaxed);
        }
        let run = |mode, why| Run { mode, why };
        if n < SAMPLES {
            run(PlanMode::Custom, Why::Sampling(n + 1))
        } else if n < 2 * SAMPLES {
            run(PlanMode::Generic, Why::Sampling(n - SAMPLES + 1))
        } else {
            // the samples read once: the mode and the reason given for it agree
            let fastest =
                |a: &AtomicU64| Some(a.load(Ordering::Relaxed)).filter(|&us| us != u64::MAX);
            let (custom, generic) = (fastest(&self.custom), fastest(&self.generic));
            let chosen = choose(custom, generic);
            if n.is_multiple_of(EXPLORE_EVERY) {
                let other = match chosen {
                    PlanMode::Custom => PlanMode::Generic,
                    PlanMode::Generic => PlanMode::Custom,
                };
                run(other, Why::Exploring)
            } else {
                run(chosen, Why::Faster { custom, generic })
            }
        }
    }

    /// Notes that a run in `mode` took `micros`.
    pub(super) fn record(&self, mode: PlanMode, micros: u64) {
        let best = match mode {
            PlanMode::Custom => &self.custom,
            PlanMode::Generic => &self.generic,
        };
        best.fetch_min(micros, Ordering::Relaxed);
    }
}

/// The mode the fastest runs so far choose (`None`: no run of that mode): the generic plan
/// when its fastest run was faster than the fastest custom one, else (and until both have a
/// run) custom plans.
fn choose(custom: Option<u64>, generic: Option<u64>) -> PlanMode {
    match (custom, generic) {
        (Some(c), Some(g)) if g < c => PlanMode::Generic,
        _ => PlanMode::Custom,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(c: &PlanChoice, custom: u64, generic: u64) {
        for _ in 0..SAMPLES {
            assert_eq!(c.next().mode, PlanMode::Custom);
            c.record(PlanMode::Custom, custom);
        }
        for _ in 0..SAMPLES {
            assert_eq!(c.next().mode, PlanMode::Generic);
            c.record(PlanMode::Generic, generic);
        }
    }

    #[test]
    fn the_faster_mode_wins_and_is_sampled_again() {
        let c = PlanChoice::default();
        sample(&c, 30_000, 50_000);
        let modes: Vec<PlanMode> = (2 * SAMPLES..2 * SAMPLES + EXPLORE_EVERY)
            .map(|_| c.next().mode)
            .collect();
        let generic = modes.iter().filter(|m| **m == PlanMode::Generic).count();
        assert_eq!(generic, 1, "one run in {EXPLORE_EVERY} explores: {modes:?}");
        // a generic run on a connection that has its plan already: faster, chosen from now
        c.record(PlanMode::Generic, 20_000);
        assert_eq!(c.next().mode, PlanMode::Generic);
        // the rest of the first sampling, then a second one where custom plans win again
        for _ in 2 * SAMPLES + EXPLORE_EVERY + 1..RESAMPLE_EVERY {
            c.next();
        }
        sample(&c, 4_000, 6_500);
        assert_eq!(c.next().mode, PlanMode::Custom);
    }

    #[test]
    fn custom_until_both_modes_have_a_sample() {
        let c = PlanChoice::default();
        for _ in 0..2 * SAMPLES {
            c.next();
        }
        c.record(PlanMode::Generic, 1_000);
        let run = c.next();
        assert_eq!(run.mode, PlanMode::Custom, "no custom sample yet");
        assert_eq!(
            run.reason(),
            "planned for its values until both modes have a measured run: fastest custom run not measured yet, fastest generic run 1.0 ms"
        );
        c.record(PlanMode::Custom, 2_000);
        assert_eq!(c.next().mode, PlanMode::Generic);
    }

    #[test]
    fn each_run_says_why_it_takes_its_mode() {
        let c = PlanChoice::default();
        let first = c.next();
        assert_eq!(first.why, Why::Sampling(1));
        assert_eq!(
            first.reason(),
            "sampling: run 1 of 3 planned for its values, before choosing the faster mode"
        );
        c.record(PlanMode::Custom, 31_200);
        for _ in 1..SAMPLES {
            c.next();
        }
        let generic = c.next();
        assert_eq!(
            (generic.mode, generic.why),
            (PlanMode::Generic, Why::Sampling(1))
        );
        assert!(
            generic.reason().contains("planned generically"),
            "{}",
            generic.reason()
        );
        c.record(PlanMode::Generic, 48_050);
        for _ in 1..SAMPLES {
            c.next();
        }
        let chosen = c.next();
        assert_eq!(chosen.mode, PlanMode::Custom);
        assert_eq!(
            chosen.reason(),
            "faster so far: fastest custom run 31.2 ms, fastest generic run 48.0 ms"
        );
        let explored: Vec<Run> = (0..EXPLORE_EVERY).map(|_| c.next()).collect();
        let other = explored
            .iter()
            .find(|r| r.why == Why::Exploring)
            .expect("one run in 16 explores");
        assert_eq!(other.mode, PlanMode::Generic);
        assert!(
            other.reason().starts_with("exploring: one run in 16"),
            "{}",
            other.reason()
        );
    }
}
