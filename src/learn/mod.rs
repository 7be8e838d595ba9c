//! Segment discovery and prediction over features SegQL computes itself: k-means clusters
//! described back as SegQL segments ([`discover`]), and propensity models trained on
//! features evaluated at a past `as_of`, so no event after the cut-off is seen
//! ([`predict`]). The methods and their limits are in `docs/learn.md`.

pub mod discover;
pub mod predict;

use std::collections::HashSet;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};

use crate::check::ir::{IrExpr, Type};
use crate::diagnostic::Diagnostic;
use crate::exec::format_cell;
use crate::{Report, Session};

/// Per-profile numeric features, as SegQL computed them at one `as_of`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureTable {
    pub names: Vec<String>,
    /// Whether each feature takes whole numbers (an `int` or `bool`).
    pub whole: Vec<bool>,
    /// Whether each feature is a profile column, which is not versioned: its value is
    /// today's whatever the `as_of`.
    pub profile_column: Vec<bool>,
    /// Each row's profile key, as text.
    pub keys: Vec<String>,
    /// One value per feature; `None` where the value is null.
    pub rows: Vec<Vec<Option<f64>>>,
}

impl FeatureTable {
    /// The rows whose features are all present, with their positions.
    pub fn complete_rows(&self) -> Vec<usize> {
        (0..self.rows.len())
            .filter(|&i| self.rows[i].iter().all(Option::is_some))
            .collect()
    }
}

/// The error of a request the learning commands cannot serve.
pub fn learn_error(message: impl Into<String>, help: impl Into<String>) -> Diagnostic {
    Diagnostic::error("E0413", message).with_help(help)
}

/// Every profile's `names` (numeric or bool metrics and profile columns) at `as_of`,
/// limited to the members of `base` at that time if given. The session's `as_of` is
/// left as it was.
pub async fn feature_table(
    session: &mut Session,
    names: &[String],
    as_of: i64,
    base: Option<&str>,
) -> Result<FeatureTable, Report> {
    if names.is_empty() {
        return Err(Report::new(
            learn_error(
                "no features were given",
                "name them with `--features a,b,c`: numeric metrics and profile columns",
            )
            .into(),
            session.sources(),
        ));
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let columns = session.output_columns(&refs)?;
    let mut whole = Vec::new();
    let mut profile_column = Vec::new();
    for column in &columns {
        match column.expr.ty {
            Type::Int | Type::Bool => whole.push(true),
            Type::Float => whole.push(false),
            ref other => {
                return Err(Report::new(
                    Diagnostic::error(
                        "E0412",
                        format!("feature `{}` is {other}, not a number", column.name),
                    )
                    .with_help(
                        "features are numbers or conditions per profile: a numeric metric such \
                         as `metric frequency = count(purchased) within 365d`, or a number column",
                    )
                    .into(),
                    session.sources(),
                ));
            }
        }
        profile_column.push(matches!(column.expr.kind, IrExpr::ProfileColumn(_)));
    }
    let previous = session.as_of();
    session.set_as_of(as_of);
    let result = async {
        let plan = session.plan_values(&refs)?;
        let batches = session.execute(plan).await?;
        let members = match base {
            Some(base) => Some(segment_members(session, base).await?),
            None => None,
        };
        Ok::<_, Report>((batches, members))
    }
    .await;
    session.set_as_of(previous);
    let (batches, members) = result?;
    let mut keys = Vec::new();
    let mut rows = Vec::new();
    for batch in &batches {
        let mut values = Vec::new();
        for c in 1..batch.num_columns() {
            let floats = cast(batch.column(c), &DataType::Float64).map_err(|e| {
                Report::new(
                    crate::internal_error(&e.to_string()).into(),
                    session.sources(),
                )
            })?;
            values.push(floats);
        }
        for row in 0..batch.num_rows() {
            let key = format_cell(batch, 0, row);
            if members.as_ref().is_some_and(|m| !m.contains(&key)) {
                continue;
            }
            let features = values
                .iter()
                .map(|array| {
                    let floats = array.as_primitive::<Float64Type>();
                    (!floats.is_null(row))
                        .then(|| floats.value(row))
                        .filter(|x| x.is_finite())
                })
                .collect();
            keys.push(key);
            rows.push(features);
        }
    }
    Ok(FeatureTable {
        names: names.to_vec(),
        whole,
        profile_column,
        keys,
        rows,
    })
}

/// The keys (as text) of the members of a segment at the session's `as_of`.
async fn segment_members(session: &Session, name: &str) -> Result<HashSet<String>, Report> {
    let plan = session.plan_segments(&[name], &[])?;
    keys_of(session, plan).await
}

/// The keys (as text) of the profiles for which `condition` (SegQL text) holds at `as_of`.
pub async fn condition_members(
    session: &mut Session,
    condition: &str,
    as_of: i64,
) -> Result<HashSet<String>, Report> {
    let typed = session.check_condition("<label>", condition)?;
    let previous = session.as_of();
    session.set_as_of(as_of);
    let members = match session.plan_condition(&typed, &[]) {
        Ok(plan) => keys_of(session, plan).await,
        Err(report) => Err(report),
    };
    session.set_as_of(previous);
    members
}

async fn keys_of(
    session: &Session,
    plan: datafusion::logical_expr::LogicalPlan,
) -> Result<HashSet<String>, Report> {
    // One segment's or one condition's members: the key is the first column.
    let batches = session.execute(plan).await?;
    let mut keys = HashSet::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            keys.insert(format_cell(batch, 0, row));
        }
    }
    Ok(keys)
}

/// Mean and population standard deviation of each column of `rows` (present values).
pub fn moments<R: AsRef<[Option<f64>]>>(rows: &[R], width: usize) -> (Vec<f64>, Vec<f64>) {
    let mut means = vec![0.0; width];
    let mut deviations = vec![0.0; width];
    for f in 0..width {
        let values: Vec<f64> = rows.iter().filter_map(|r| r.as_ref()[f]).collect();
        if values.is_empty() {
            continue;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let variance =
            values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / values.len() as f64;
        means[f] = mean;
        deviations[f] = variance.sqrt();
    }
    (means, deviations)
}

/// `x` standardized: a constant feature is 0.
pub fn z_score(x: f64, mean: f64, deviation: f64) -> f64 {
    if deviation > 0.0 {
        (x - mean) / deviation
    } else {
        0.0
    }
}

/// A number as a SegQL literal, to about four significant digits (whole numbers as
/// such), and the value the literal stands for.
pub fn literal(x: f64, whole: bool) -> (String, f64) {
    if whole || x == x.round() && x.abs() < 1e15 {
        let rounded = x.round();
        return (format!("{rounded:.0}"), rounded);
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(1, 9) as usize;
    let text = format!("{x:.decimals$}");
    let value = text.parse().unwrap_or(x);
    (text, value)
}
