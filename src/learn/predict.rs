//! Propensity models: logistic regression on SegQL features evaluated at a past `as_of`,
//! with labels observed in the horizon that follows, so no event after a row's feature
//! cut-off can reach its features.
//!
//! ```text
//! now - 2h ─── training features ──▶ now - h ─── training labels, holdout features ──▶ now
//!                                                                  holdout labels ──▶ now
//! ```
//!
//! The model is fitted on the training rows and measured on the holdout rows, which come
//! one horizon later: a time-based split, as the model will be used.

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::{FeatureTable, condition_members, feature_table, learn_error, moments, z_score};
use crate::check::display::timestamp;
use crate::{Report, Session};

/// The version of the model file format.
pub const MODEL_FORMAT: u32 = 1;
/// Calibration bins of the holdout report.
const BINS: usize = 10;

/// A trained model, as `segql train` saves it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Model {
    pub format: u32,
    /// The condition the model predicts, as SegQL.
    pub label: String,
    /// Nanoseconds.
    pub horizon: i64,
    pub features: Vec<String>,
    /// Each feature's training mean (also the value a missing feature takes) and
    /// population standard deviation.
    pub means: Vec<f64>,
    pub deviations: Vec<f64>,
    /// One weight per standardized feature.
    pub weights: Vec<f64>,
    pub intercept: f64,
    pub evaluation: Evaluation,
}

/// How the model did on the time-based holdout.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    pub training_features_at: String,
    pub training_labels_at: String,
    pub holdout_features_at: String,
    pub holdout_labels_at: String,
    pub training_rows: usize,
    pub training_positives: usize,
    pub holdout_rows: usize,
    pub holdout_positives: usize,
    /// Area under the ROC curve on the holdout rows.
    pub auc: f64,
    /// The AUC of a constant prediction (the base rate): 0.5.
    pub baseline_auc: f64,
    /// Holdout rows in ten bins of predicted probability: mean prediction against the
    /// observed rate.
    pub calibration: Vec<CalibrationBin>,
    /// Features that are profile columns: not versioned, so their values are today's.
    pub unversioned_features: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CalibrationBin {
    pub rows: usize,
    pub predicted: f64,
    pub observed: f64,
}

/// What to train.
pub struct Training<'a> {
    /// The condition to predict, evaluated at the end of the horizon.
    pub label: &'a str,
    /// Nanoseconds.
    pub horizon: i64,
    pub features: &'a [String],
    /// Only the members of this segment (at each feature cut-off).
    pub base: Option<&'a str>,
}

/// Trains a model at the session's `as_of` (see the module documentation).
pub async fn train(session: &mut Session, training: &Training<'_>) -> Result<Model, Report> {
    let now = session.as_of();
    let error = |session: &Session, message: String, help: &str| {
        Report::new(learn_error(message, help).into(), session.sources())
    };
    let (holdout_cut, training_cut) = match (
        now.checked_sub(training.horizon),
        now.checked_sub(training.horizon.saturating_mul(2)),
    ) {
        (Some(h), Some(t)) if training.horizon > 0 => (h, t),
        _ => {
            return Err(error(
                session,
                "the horizon must be a positive duration within the time range".into(),
                "write it like `--horizon 90d`",
            ));
        }
    };
    let x_train = feature_table(session, training.features, training_cut, training.base).await?;
    let y_train = condition_members(session, training.label, holdout_cut).await?;
    let x_holdout = feature_table(session, training.features, holdout_cut, training.base).await?;
    let y_holdout = condition_members(session, training.label, now).await?;
    let labels = |table: &FeatureTable, members: &std::collections::HashSet<String>| {
        table
            .keys
            .iter()
            .map(|k| members.contains(k))
            .collect::<Vec<bool>>()
    };
    let (train_labels, holdout_labels) =
        (labels(&x_train, &y_train), labels(&x_holdout, &y_holdout));
    let positives = train_labels.iter().filter(|l| **l).count();
    if positives == 0 || positives == train_labels.len() {
        return Err(error(
            session,
            format!(
                "the label holds for {positives} of the {} training profiles: there is nothing to learn",
                train_labels.len()
            ),
            "a label must hold for some profiles and not for others at the end of the training horizon; check it with `segql count`, or choose another horizon",
        ));
    }
    if holdout_labels.is_empty() {
        return Err(error(
            session,
            "there are no profiles to measure the model on".into(),
            "check `--segment`: it has no members at the holdout's feature cut-off",
        ));
    }
    let width = training.features.len();
    let (means, deviations) = moments(&x_train.rows, width);
    let standardized = |table: &FeatureTable| {
        Array2::from_shape_fn((table.rows.len(), width), |(i, f)| {
            table.rows[i][f].map_or(0.0, |x| z_score(x, means[f], deviations[f]))
        })
    };
    let fitted = LogisticRegression::default()
        .alpha(1e-3)
        .max_iterations(300)
        .fit(&DatasetBase::new(
            standardized(&x_train),
            Array1::from(train_labels.clone()),
        ))
        .map_err(|e| {
            error(
                session,
                format!("the model could not be fitted: {e}"),
                "try fewer or other features",
            )
        })?;
    let mut weights = fitted.params().to_vec();
    let mut intercept = fitted.intercept();
    // linfa predicts the larger class, `true`; flip the model if it ever labels otherwise.
    if !fitted.labels().pos.class {
        weights.iter_mut().for_each(|w| *w = -*w);
        intercept = -intercept;
    }
    let mut model = Model {
        format: MODEL_FORMAT,
        label: training.label.to_string(),
        horizon: training.horizon,
        features: training.features.to_vec(),
        means,
        deviations,
        weights,
        intercept,
        evaluation: Evaluation {
            training_features_at: timestamp(training_cut),
            training_labels_at: timestamp(holdout_cut),
            holdout_features_at: timestamp(holdout_cut),
            holdout_labels_at: timestamp(now),
            training_rows: train_labels.len(),
            training_positives: positives,
            holdout_rows: holdout_labels.len(),
            holdout_positives: holdout_labels.iter().filter(|l| **l).count(),
            auc: 0.0,
            baseline_auc: 0.5,
            calibration: Vec::new(),
            unversioned_features: (training.features.iter())
                .zip(&x_train.profile_column)
                .filter(|(_, p)| **p)
                .map(|(f, _)| f.clone())
                .collect(),
        },
    };
    let predictions: Vec<f64> = x_holdout
        .rows
        .iter()
        .map(|r| model.probability(r))
        .collect();
    model.evaluation.auc = auc(&predictions, &holdout_labels);
    model.evaluation.calibration = calibration(&predictions, &holdout_labels);
    Ok(model)
}

impl Model {
    /// The predicted probability for one profile's features (a missing one takes the
    /// training mean).
    pub fn probability(&self, features: &[Option<f64>]) -> f64 {
        let mut z = self.intercept;
        for (f, value) in features.iter().enumerate() {
            let x = value.unwrap_or(self.means[f]);
            z += self.weights[f] * z_score(x, self.means[f], self.deviations[f]);
        }
        1.0 / (1.0 + (-z).exp())
    }

    /// The model as a SegQL expression over its features: `1 / (1 + exp(-(...)))`, a
    /// missing feature taking the training mean. Every engine evaluates it.
    pub fn expression(&self) -> String {
        let mut constant = self.intercept;
        let mut terms = Vec::new();
        for (f, name) in self.features.iter().enumerate() {
            if self.deviations[f] <= 0.0 {
                continue;
            }
            let slope = self.weights[f] / self.deviations[f];
            constant -= slope * self.means[f];
            terms.push(format!(
                "({}) * coalesce({name}, {})",
                number(slope),
                number(self.means[f])
            ));
        }
        let mut linear = number(constant);
        for term in terms {
            linear.push_str(" + ");
            linear.push_str(&term);
        }
        format!("1 / (1 + exp(-({linear})))")
    }

    /// `metric NAME = <expression>`.
    pub fn metric(&self, name: &str) -> String {
        format!(
            "# the chance of `{}` {} ahead (segql train; holdout AUC {:.3})\nmetric {name} = {}\n",
            self.label,
            crate::check::display::duration(self.horizon),
            self.evaluation.auc,
            self.expression()
        )
    }
}

/// A float as a SegQL literal, exactly enough: fixed notation (SegQL has no exponent).
fn number(x: f64) -> String {
    let text = format!("{x:.12}");
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    match trimmed {
        "" | "-" | "-0" => "0".to_string(),
        t => t.to_string(),
    }
}

/// The area under the ROC curve: the chance that a random positive is ranked above a
/// random negative, ties counting half.
pub fn auc(predictions: &[f64], labels: &[bool]) -> f64 {
    let mut ranked: Vec<(f64, bool)> = predictions
        .iter()
        .copied()
        .zip(labels.iter().copied())
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = labels.iter().filter(|l| **l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }
    // Sum of the positives' ranks, tied values sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < ranked.len() {
        let mut j = i;
        while j + 1 < ranked.len() && ranked[j + 1].0 == ranked[i].0 {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mean_rank * ranked[i..=j].iter().filter(|(_, l)| *l).count() as f64;
        i = j + 1;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Predictions in ten bins of equal size, by predicted probability.
fn calibration(predictions: &[f64], labels: &[bool]) -> Vec<CalibrationBin> {
    let mut order: Vec<usize> = (0..predictions.len()).collect();
    order.sort_by(|&a, &b| predictions[a].total_cmp(&predictions[b]));
    let bins = BINS.min(order.len());
    (0..bins)
        .map(|b| {
            let rows = &order[b * order.len() / bins..(b + 1) * order.len() / bins];
            let n = rows.len().max(1) as f64;
            CalibrationBin {
                rows: rows.len(),
                predicted: rows.iter().map(|&r| predictions[r]).sum::<f64>() / n,
                observed: rows.iter().filter(|&&r| labels[r]).count() as f64 / n,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ordered_pairs_and_half_of_the_ties() {
        assert_eq!(
            auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
            0.75
        );
        assert_eq!(auc(&[0.9, 0.1], &[false, true]), 0.0);
        assert_eq!(auc(&[0.5, 0.5, 0.5], &[true, false, true]), 0.5);
    }

    #[test]
    fn numbers_are_segql_literals_without_exponents() {
        assert_eq!(number(1e-7), "0.0000001");
        assert_eq!(number(-2.5), "-2.5");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(-1e-15), "0");
    }
}
