//! Segment discovery: k-means over standardized features, each cluster described as a
//! SegQL condition of at most three ranges that approximates it, with the condition's
//! precision and recall against the cluster.

use linfa::DatasetBase;
use linfa::metrics::SilhouetteScore;
use linfa::traits::{Fit, Predict};
use linfa_clustering::KMeans;
use ndarray::{Array1, Array2};

use super::{FeatureTable, learn_error, literal, moments, z_score};
use crate::diagnostic::Diagnostic;

/// The most clusters `--k auto` tries.
pub const MAX_AUTO_K: usize = 8;
/// The profiles `--k auto` fits each candidate k on before fitting the chosen one on all.
const SELECTION_SAMPLE: usize = 50_000;
/// The profiles the silhouette of each candidate k is computed on (it is quadratic).
const SILHOUETTE_SAMPLE: usize = 1_000;
/// The most ranges a cluster's condition has.
const MAX_RANGES: usize = 3;
/// A range covers the cluster's values from this quantile to one minus it.
const RANGE_QUANTILE: f64 = 0.05;

/// How many clusters to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterCount {
    Fixed(usize),
    /// The k in `2..=MAX_AUTO_K` with the best silhouette.
    Auto,
}

/// The clusters found, largest first.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub features: Vec<String>,
    pub clusters: Vec<Cluster>,
    /// The mean silhouette of the clustering (on a sample of at most 2,000 profiles).
    pub silhouette: f64,
    /// Whether k was chosen by silhouette.
    pub chosen: bool,
    /// Each clustered profile's key and cluster (an index into `clusters`).
    pub assignments: Vec<(String, usize)>,
    /// Profiles left out because a feature is null.
    pub left_out: usize,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub size: usize,
    /// The features by how far the cluster's mean is from everyone's, in standard
    /// deviations, farthest first.
    pub distinguishing: Vec<(String, f64)>,
    /// The condition that approximates the cluster: a conjunction of ranges.
    pub ranges: Vec<Range>,
    /// Profiles (of those clustered) the condition selects.
    pub selected: usize,
    pub precision: f64,
    pub recall: f64,
}

/// `feature >= low`, `feature <= high` or `feature between low and high`, with each bound
/// as written in SegQL.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub feature: usize,
    pub low: Option<(String, f64)>,
    pub high: Option<(String, f64)>,
}

impl Range {
    fn holds(&self, x: f64) -> bool {
        self.low.as_ref().is_none_or(|(_, l)| x >= *l)
            && self.high.as_ref().is_none_or(|(_, h)| x <= *h)
    }

    fn text(&self, names: &[String]) -> String {
        let name = &names[self.feature];
        match (&self.low, &self.high) {
            (Some((l, _)), Some((h, _))) => format!("{name} between {l} and {h}"),
            (Some((l, _)), None) => format!("{name} >= {l}"),
            (None, Some((h, _))) => format!("{name} <= {h}"),
            (None, None) => "true".to_string(),
        }
    }
}

impl Discovery {
    /// Cluster `index` as a SegQL segment named `name`, within `base` if given.
    pub fn segment(&self, index: usize, name: &str, base: Option<&str>) -> String {
        let cluster = &self.clusters[index];
        let mut parts: Vec<String> = base.map(|b| format!("in {b}")).into_iter().collect();
        parts.extend(cluster.ranges.iter().map(|r| r.text(&self.features)));
        if parts.is_empty() {
            parts.push("true".to_string());
        }
        format!("segment {name} = {}", parts.join(" and "))
    }
}

/// Clusters the profiles of `table` whose features are all present.
pub fn discover(table: &FeatureTable, count: ClusterCount) -> Result<Discovery, Diagnostic> {
    let complete = table.complete_rows();
    let width = table.names.len();
    let raw: Vec<Vec<f64>> = complete
        .iter()
        .map(|&i| table.rows[i].iter().map(|v| v.unwrap_or(0.0)).collect())
        .collect();
    let smallest = match count {
        ClusterCount::Fixed(k) => k.max(2),
        ClusterCount::Auto => 2,
    };
    if raw.len() < 5 * smallest {
        return Err(learn_error(
            format!(
                "{} profiles have every feature, too few to find clusters",
                raw.len()
            ),
            "clustering needs at least five profiles per cluster: choose features that are \
             not null for most profiles (wrap them in `coalesce(..., 0)`), or a smaller `--k`",
        ));
    }
    let complete_rows: Vec<&Vec<Option<f64>>> = complete.iter().map(|&i| &table.rows[i]).collect();
    let (means, deviations) = moments(&complete_rows, width);
    let z = Array2::from_shape_fn((raw.len(), width), |(i, f)| {
        z_score(raw[i][f], means[f], deviations[f])
    });
    let candidates: Vec<usize> = match count {
        ClusterCount::Fixed(k) => vec![k],
        ClusterCount::Auto => (2..=MAX_AUTO_K).filter(|k| raw.len() >= 5 * k).collect(),
    };
    // k is chosen on an evenly spaced sample, then fitted on every profile.
    let step = z.nrows().div_ceil(SELECTION_SAMPLE).max(1);
    let sample = z.select(
        ndarray::Axis(0),
        &(0..z.nrows()).step_by(step).collect::<Vec<_>>(),
    );
    let mut best: Option<(f64, usize)> = None;
    for &k in &candidates {
        if candidates.len() == 1 {
            best = Some((0.0, k));
            break;
        }
        let score = silhouette(&sample, &k_means(&sample, k)?);
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, k));
        }
    }
    let Some((_, k)) = best else {
        return Err(learn_error("no number of clusters fits", "give `--k N`"));
    };
    let labels = k_means(&z, k)?;
    let silhouette = silhouette(&z, &labels);
    // Clusters by size, largest first, so the output is stable.
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let mut sizes: Vec<(usize, usize)> = (0..k)
        .map(|c| (labels.iter().filter(|l| **l == c).count(), c))
        .collect();
    sizes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut order = vec![0; k];
    for (rank, (_, c)) in sizes.iter().enumerate() {
        order[*c] = rank;
    }
    let labels: Vec<usize> = labels.iter().map(|l| order[*l]).collect();
    let clusters = (0..k)
        .map(|c| describe(table, &raw, &z, &labels, c))
        .collect();
    Ok(Discovery {
        features: table.names.clone(),
        clusters,
        silhouette,
        chosen: count == ClusterCount::Auto,
        assignments: complete
            .iter()
            .zip(&labels)
            .map(|(&i, &c)| (table.keys[i].clone(), c))
            .collect(),
        left_out: table.rows.len() - complete.len(),
    })
}

/// k-means (k-means++ starts, the best of ten runs, a fixed seed): each row's cluster.
fn k_means(z: &Array2<f64>, k: usize) -> Result<Vec<usize>, Diagnostic> {
    let dataset = DatasetBase::from(z.clone());
    let model = KMeans::params(k)
        .n_runs(4)
        .max_n_iterations(100)
        .tolerance(1e-6)
        .fit(&dataset)
        .map_err(|e| learn_error(format!("k-means failed: {e}"), "try another `--k`"))?;
    let labels: Array1<usize> = model.predict(z);
    Ok(labels.to_vec())
}

/// The mean silhouette of a clustering, on an evenly spaced sample of the rows.
fn silhouette(z: &Array2<f64>, labels: &[usize]) -> f64 {
    let step = z.nrows().div_ceil(SILHOUETTE_SAMPLE).max(1);
    let rows: Vec<usize> = (0..z.nrows()).step_by(step).collect();
    let sample = z.select(ndarray::Axis(0), &rows);
    let targets: Array1<usize> = rows.iter().map(|&r| labels[r]).collect();
    DatasetBase::new(sample, targets)
        .silhouette_score()
        .unwrap_or(-1.0)
}

/// Cluster `c`: how it differs, and a conjunction of ranges chosen greedily for the best
/// F1 score against membership.
fn describe(
    table: &FeatureTable,
    raw: &[Vec<f64>],
    z: &Array2<f64>,
    labels: &[usize],
    c: usize,
) -> Cluster {
    let width = table.names.len();
    let inside: Vec<bool> = labels.iter().map(|l| *l == c).collect();
    let size = inside.iter().filter(|i| **i).count();
    let mut distinguishing: Vec<(String, f64)> = (0..width)
        .map(|f| {
            let mean = (0..raw.len())
                .filter(|&i| inside[i])
                .map(|i| z[[i, f]])
                .sum::<f64>()
                / size.max(1) as f64;
            (table.names[f].clone(), mean)
        })
        .collect();
    distinguishing.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    let candidates: Vec<Range> = (0..width)
        .filter_map(|f| range_for(raw, &inside, f, table.whole[f]))
        .collect();
    let mut ranges: Vec<Range> = Vec::new();
    let mut selected: Vec<bool> = vec![true; raw.len()];
    let mut best_f1 = f1(&selected, &inside);
    while ranges.len() < MAX_RANGES {
        let mut round: Option<(f64, &Range)> = None;
        for candidate in &candidates {
            if ranges.iter().any(|r| r.feature == candidate.feature) {
                continue;
            }
            let narrowed: Vec<bool> = (0..raw.len())
                .map(|i| selected[i] && candidate.holds(raw[i][candidate.feature]))
                .collect();
            let score = f1(&narrowed, &inside);
            if round.is_none_or(|(s, _)| score > s) {
                round = Some((score, candidate));
            }
        }
        match round {
            Some((score, range)) if score > best_f1 + 0.01 => {
                best_f1 = score;
                for (i, row) in raw.iter().enumerate() {
                    selected[i] = selected[i] && range.holds(row[range.feature]);
                }
                ranges.push(range.clone());
            }
            _ => break,
        }
    }
    let chosen = selected.iter().filter(|s| **s).count();
    let hits = (0..raw.len()).filter(|&i| selected[i] && inside[i]).count();
    Cluster {
        size,
        distinguishing,
        ranges,
        selected: chosen,
        precision: ratio(hits, chosen),
        recall: ratio(hits, size),
    }
}

/// The range of feature `f` that holds the middle 90% of the cluster's values, open on a
/// side where it would not exclude anyone; `None` if it excludes no one at all.
fn range_for(raw: &[Vec<f64>], inside: &[bool], f: usize, whole: bool) -> Option<Range> {
    let mut values: Vec<f64> = (0..raw.len())
        .filter(|&i| inside[i])
        .map(|i| raw[i][f])
        .collect();
    values.sort_by(f64::total_cmp);
    let quantile = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    let (low, high) = (quantile(RANGE_QUANTILE), quantile(1.0 - RANGE_QUANTILE));
    let (low, high) = if whole {
        (low.floor(), high.ceil())
    } else {
        (low, high)
    };
    let min = raw.iter().map(|r| r[f]).fold(f64::INFINITY, f64::min);
    let max = raw.iter().map(|r| r[f]).fold(f64::NEG_INFINITY, f64::max);
    let low = (low > min).then(|| literal(low, whole));
    let high = (high < max).then(|| literal(high, whole));
    (low.is_some() || high.is_some()).then_some(Range {
        feature: f,
        low,
        high,
    })
}

fn f1(selected: &[bool], inside: &[bool]) -> f64 {
    let hits = selected
        .iter()
        .zip(inside)
        .filter(|(s, i)| **s && **i)
        .count();
    let chosen = selected.iter().filter(|s| **s).count();
    let size = inside.iter().filter(|i| **i).count();
    if hits == 0 {
        return 0.0;
    }
    let (precision, recall) = (ratio(hits, chosen), ratio(hits, size));
    2.0 * precision * recall / (precision + recall)
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The adjusted Rand index of two labelings of the same items: 1 for the same partition,
/// about 0 for independent ones.
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    use std::collections::HashMap;
    let pairs = |n: u64| n * n.saturating_sub(1) / 2;
    let mut table: HashMap<(usize, usize), u64> = HashMap::new();
    let mut rows: HashMap<usize, u64> = HashMap::new();
    let mut columns: HashMap<usize, u64> = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *table.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *columns.entry(y).or_default() += 1;
    }
    let index: f64 = table.values().map(|&n| pairs(n) as f64).sum();
    let row_pairs: f64 = rows.values().map(|&n| pairs(n) as f64).sum();
    let column_pairs: f64 = columns.values().map(|&n| pairs(n) as f64).sum();
    let total = pairs(a.len() as u64) as f64;
    let expected = row_pairs * column_pairs / total.max(1.0);
    let maximum = (row_pairs + column_pairs) / 2.0;
    if maximum == expected {
        return 1.0;
    }
    (index - expected) / (maximum - expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adjusted_rand_index_ignores_names_and_punishes_mixing() {
        assert_eq!(
            adjusted_rand_index(&[0, 0, 1, 1, 2, 2], &[5, 5, 3, 3, 4, 4]),
            1.0
        );
        let mixed = adjusted_rand_index(&[0, 0, 0, 1, 1, 1], &[0, 1, 0, 1, 0, 1]);
        assert!(mixed < 0.0, "{mixed}");
        let close = adjusted_rand_index(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 1, 1]);
        assert!(close > 0.2 && close < 1.0, "{close}");
    }
}
