//! `segql report`: what the segments of a file look like, as one self-contained HTML page
//! with SVG charts: each segment's size, the overlap between every two segments, each
//! size over time (evaluated at past `as_of` points), and the composition of each
//! segment by one attribute.
//!
//! [`SegmentReport::collect`] evaluates through the session's DataFusion plans;
//! [`SegmentReport::to_html`] draws. The page needs no network: styles and charts are
//! inline, and the figures are embedded as JSON (`<script id="segql-report-data">`) for
//! tools that read the page.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::common::ScalarValue;
use serde::Serialize;

use crate::check::ir::{Type, TypedExpr};
use crate::{Report, Session, internal_error};

/// How much of a composition is drawn: the most common values, the rest as "other".
const TOP_VALUES: usize = 7;
/// The label of a missing attribute value.
const NO_VALUE: &str = "(none)";
const OTHER: &str = "(other)";

/// What the report shows and when.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The segments, in order; empty: every segment of the program.
    pub segments: Vec<String>,
    /// The attribute the composition is by: a profile column, metric or stage. `None`:
    /// the first text column of the profiles.
    pub by: Option<String>,
    /// The time between two points of the history, in nanoseconds.
    pub every: i64,
    /// How many points the history has, the last at the session's `as_of`.
    pub points: usize,
}

/// The figures of a report.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentReport {
    pub title: String,
    /// When the segments were evaluated: a date (midnight UTC) or RFC 3339.
    pub as_of: String,
    pub profiles: u64,
    pub segments: Vec<String>,
    /// Members per segment.
    pub sizes: Vec<u64>,
    /// `overlaps[i][j]`: profiles in both segment `i` and segment `j`.
    pub overlaps: Vec<Vec<u64>>,
    /// Sizes at past points, oldest first; the last point is `as_of`.
    pub history: Vec<HistoryPoint>,
    pub composition: Option<Composition>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryPoint {
    pub as_of: String,
    pub sizes: Vec<u64>,
}

/// Members of each segment by the value of one attribute.
#[derive(Debug, Clone, Serialize)]
pub struct Composition {
    pub by: String,
    /// The most common values among all profiles, then "(other)" if there are more.
    pub values: Vec<String>,
    /// `counts[i][v]`: members of segment `i` with value `values[v]`.
    pub counts: Vec<Vec<u64>>,
    /// All profiles by the same values.
    pub all: Vec<u64>,
}

fn failed(session: &Session, what: &str, error: impl std::fmt::Display) -> Report {
    Report::new(
        internal_error(&format!("{what}: {error}")).into(),
        session.sources(),
    )
}

impl SegmentReport {
    /// Evaluates the figures. The session's `as_of` is changed for the history and put
    /// back.
    pub async fn collect(
        session: &mut Session,
        title: &str,
        options: &ReportOptions,
    ) -> Result<SegmentReport, Report> {
        let names: Vec<String> = if options.segments.is_empty() {
            session.program().segment_names()
        } else {
            options.segments.clone()
        };
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        session.segments(&refs)?;
        let by = match &options.by {
            Some(by) => Some(by.clone()),
            None => default_attribute(session),
        };
        let as_of = session.as_of();
        let profiles = count_profiles(session).await?;

        // Members with the attribute, in one plan.
        let with: Vec<&str> = by.iter().map(String::as_str).collect();
        session.output_columns(&with)?;
        let plan = session.plan_segments(&refs, &with)?;
        let batches = session.execute(plan).await?;
        let index: HashMap<&str, usize> = refs.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut member_of: HashMap<ScalarValue, Vec<usize>> = HashMap::new();
        let mut by_value: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); names.len()];
        let single = refs.len() == 1;
        for batch in &batches {
            let key_column = if single { 0 } else { 1 };
            for row in 0..batch.num_rows() {
                let segment = if single {
                    0
                } else {
                    let name = batch.column(0).as_string::<i32>().value(row);
                    index.get(name).copied().ok_or_else(|| {
                        failed(session, "a member of an unknown segment", name.to_string())
                    })?
                };
                let key = ScalarValue::try_from_array(batch.column(key_column), row)
                    .map_err(|e| failed(session, "reading a member", e))?;
                member_of.entry(key).or_default().push(segment);
                if by.is_some() {
                    let value = label(batch.column(key_column + 1), row)
                        .map_err(|e| failed(session, "reading an attribute", e))?;
                    *by_value[segment].entry(value).or_default() += 1;
                }
            }
        }
        let mut sizes = vec![0u64; names.len()];
        let mut overlaps = vec![vec![0u64; names.len()]; names.len()];
        for segments in member_of.values() {
            for &a in segments {
                sizes[a] += 1;
                for &b in segments {
                    overlaps[a][b] += 1;
                }
            }
        }

        let composition = match &by {
            None => None,
            Some(by) => {
                let everyone = session.check_condition("<every profile>", "true")?;
                Some(composition(session, &everyone, by, &by_value).await?)
            }
        };

        let mut history = Vec::with_capacity(options.points);
        for step in (0..options.points).rev() {
            let at = as_of.saturating_sub(options.every.saturating_mul(step as i64));
            session.set_as_of(at);
            let counts = session.counts(&refs).await;
            session.set_as_of(as_of);
            let counts: HashMap<String, u64> = counts?.into_iter().collect();
            history.push(HistoryPoint {
                as_of: moment(at),
                sizes: names
                    .iter()
                    .map(|n| counts.get(n).copied().unwrap_or(0))
                    .collect(),
            });
        }
        Ok(SegmentReport {
            title: title.to_string(),
            as_of: moment(as_of),
            profiles,
            segments: names,
            sizes,
            overlaps,
            history,
            composition,
        })
    }

    /// The report as a self-contained HTML page.
    pub fn to_html(&self) -> String {
        let mut page = String::new();
        let data = serde_json::to_string(self)
            .unwrap_or_else(|_| "{}".to_string())
            .replace("</", "<\\/");
        let _ = write!(
            page,
            r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Segments of {title}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>Segments of <span class="file">{title}</span></h1>
<p class="lede">{segments} segments over {profiles} profiles, evaluated at {as_of}.</p>
</header>
"#,
            title = escape(&self.title),
            segments = self.segments.len(),
            profiles = thousands(self.profiles),
            as_of = escape(&self.as_of),
        );
        self.sizes_section(&mut page);
        self.overlap_section(&mut page);
        self.history_section(&mut page);
        self.composition_section(&mut page);
        let _ = write!(
            page,
            r#"<footer>Made by <code>segql report</code>. The figures are also in this page as JSON: <code>#segql-report-data</code>.</footer>
<script type="application/json" id="segql-report-data">{data}</script>
</body>
</html>
"#
        );
        page
    }

    fn sizes_section(&self, page: &mut String) {
        let width = 900.0;
        let label_width = 230.0;
        let row = 26.0;
        let height = row * self.segments.len() as f64 + 10.0;
        let largest = self.sizes.iter().copied().max().unwrap_or(0).max(1) as f64;
        let bar_space = width - label_width - 150.0;
        let _ = write!(
            page,
            r#"<section><h2>Size</h2><p class="note">Members of each segment, and their share of all profiles.</p>
<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="Segment sizes">"#
        );
        for (i, (name, size)) in self.segments.iter().zip(&self.sizes).enumerate() {
            let y = i as f64 * row + 5.0;
            let bar = (*size as f64 / largest * bar_space).max(1.0);
            let share = percent(*size, self.profiles);
            let _ = write!(
                page,
                r##"<g><title>{name}: {count} members, {share} of profiles</title>
<text x="{lx}" y="{ty}" class="label" text-anchor="end">{name}</text>
<rect x="{label_width}" y="{y}" width="{bar:.1}" height="{h}" rx="3" fill="{color}"/>
<text x="{vx:.1}" y="{ty}" class="value">{count} · {share}</text></g>"##,
                name = escape(name),
                count = thousands(*size),
                lx = label_width - 8.0,
                ty = y + 14.0,
                h = row - 8.0,
                color = PALETTE[0],
                vx = label_width + bar + 6.0,
            );
        }
        page.push_str("</svg></section>\n");
    }

    fn overlap_section(&self, page: &mut String) {
        let n = self.segments.len();
        let cell = if n <= 12 { 44.0 } else { 30.0 };
        let label_width = 230.0;
        let top = 150.0;
        // Room on the right for the slanted labels of the last columns.
        let width = label_width + cell * n as f64 + 120.0;
        let height = top + cell * n as f64 + 10.0;
        let _ = write!(
            page,
            r#"<section><h2>Overlap</h2><p class="note">Each row is a segment; a cell is the share of its members that are also in the column's segment. Hover for the counts.</p>
<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="Overlap between segments">"#
        );
        for (j, name) in self.segments.iter().enumerate() {
            let x = label_width + cell * (j as f64 + 0.5);
            let _ = write!(
                page,
                r#"<text class="label" transform="translate({x:.1},{y:.1}) rotate(-50)">{name}</text>"#,
                y = top - 6.0,
                name = escape(name),
            );
        }
        for (i, row_name) in self.segments.iter().enumerate() {
            let y = top + cell * i as f64;
            let _ = write!(
                page,
                r#"<text x="{x}" y="{ty:.1}" class="label" text-anchor="end">{name}</text>"#,
                x = label_width - 8.0,
                ty = y + cell / 2.0 + 4.0,
                name = escape(row_name),
            );
            for (j, column_name) in self.segments.iter().enumerate() {
                let both = self.overlaps[i][j];
                let share = if self.sizes[i] == 0 {
                    0.0
                } else {
                    both as f64 / self.sizes[i] as f64
                };
                let x = label_width + cell * j as f64;
                let fill = if i == j {
                    "#e8e8ee".to_string()
                } else {
                    heat(share)
                };
                let text = if i == j {
                    String::new()
                } else {
                    format!("{:.0}", share * 100.0)
                };
                let ink = if share > 0.55 && i != j {
                    "#fff"
                } else {
                    "#333"
                };
                let _ = write!(
                    page,
                    r##"<g><title>{a} and {b}: {count} profiles ({pct} of {a})</title><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{w:.1}" fill="{fill}" stroke="#fff"/><text x="{tx:.1}" y="{ty:.1}" class="cell" fill="{ink}" text-anchor="middle">{text}</text></g>"##,
                    a = escape(row_name),
                    b = escape(column_name),
                    count = thousands(both),
                    pct = percent(both, self.sizes[i]),
                    w = cell,
                    tx = x + cell / 2.0,
                    ty = y + cell / 2.0 + 4.0,
                );
            }
        }
        page.push_str("</svg></section>\n");
    }

    fn history_section(&self, page: &mut String) {
        let (Some(first), Some(last)) = (self.history.first(), self.history.last()) else {
            return;
        };
        let _ = write!(
            page,
            r#"<section><h2>Size over time</h2><p class="note">Members at {points} points from {from} to {to}; each chart has its own scale.</p><div class="grid">"#,
            points = self.history.len(),
            from = escape(&first.as_of),
            to = escape(&last.as_of),
        );
        let (width, height, pad) = (260.0, 70.0, 6.0);
        for (s, name) in self.segments.iter().enumerate() {
            let series: Vec<u64> = self.history.iter().map(|p| p.sizes[s]).collect();
            let low = series.iter().copied().min().unwrap_or(0) as f64;
            let high = series.iter().copied().max().unwrap_or(0) as f64;
            let span = (high - low).max(1.0);
            let step = if series.len() > 1 {
                (width - 2.0 * pad) / (series.len() - 1) as f64
            } else {
                0.0
            };
            let flat = high == low;
            let point = |i: usize, v: u64| {
                let y = if flat {
                    height / 2.0
                } else {
                    height - pad - (v as f64 - low) / span * (height - 2.0 * pad)
                };
                (pad + step * i as f64, y)
            };
            let line: Vec<String> = series
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let (x, y) = point(i, *v);
                    format!("{x:.1},{y:.1}")
                })
                .collect();
            let area = format!(
                "{pad},{bottom} {} {right:.1},{bottom}",
                line.join(" "),
                bottom = height - pad,
                right = pad + step * (series.len().saturating_sub(1)) as f64,
            );
            let change = match (series.first(), series.last()) {
                (Some(&a), Some(&b)) if a > 0 => {
                    format!("{:+.0}%", (b as f64 - a as f64) / a as f64 * 100.0)
                }
                _ => String::new(),
            };
            let _ = write!(
                page,
                r#"<figure class="spark"><figcaption><b>{name}</b> <span>{now}</span> <span class="delta">{change}</span></figcaption>
<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{name} over time"><polygon points="{area}" fill="{fill}"/><polyline points="{line}" fill="none" stroke="{stroke}" stroke-width="2"/>"#,
                name = escape(name),
                now = thousands(series.last().copied().unwrap_or(0)),
                line = line.join(" "),
                fill = AREA,
                stroke = PALETTE[0],
            );
            for (i, (v, p)) in series.iter().zip(&self.history).enumerate() {
                let (x, y) = point(i, *v);
                let _ = write!(
                    page,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{}"><title>{}: {}</title></circle>"#,
                    PALETTE[0],
                    escape(&p.as_of),
                    thousands(*v)
                );
            }
            page.push_str("</svg></figure>");
        }
        page.push_str("</div></section>\n");
    }

    fn composition_section(&self, page: &mut String) {
        let Some(composition) = &self.composition else {
            return;
        };
        let width = 900.0;
        let label_width = 230.0;
        let row = 26.0;
        let bar_width = width - label_width - 20.0;
        let rows: Vec<(String, &[u64])> =
            std::iter::once(("all profiles".to_string(), &composition.all[..]))
                .chain(
                    self.segments
                        .iter()
                        .zip(&composition.counts)
                        .map(|(n, c)| (n.clone(), &c[..])),
                )
                .collect();
        let height = row * rows.len() as f64 + 10.0;
        let _ = write!(
            page,
            r#"<section><h2>Composition by <code>{by}</code></h2><p class="note">Each bar is one segment's members split by <code>{by}</code>; the first bar is all profiles, to compare with.</p><div class="legend">"#,
            by = escape(&composition.by)
        );
        for (v, value) in composition.values.iter().enumerate() {
            let _ = write!(
                page,
                r#"<span><i style="background:{}"></i>{}</span>"#,
                PALETTE[v % PALETTE.len()],
                escape(value)
            );
        }
        let _ = write!(
            page,
            r#"</div><svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="Composition by {by}">"#,
            by = escape(&composition.by)
        );
        for (i, (name, counts)) in rows.iter().enumerate() {
            let y = i as f64 * row + 5.0;
            let total: u64 = counts.iter().sum();
            let _ = write!(
                page,
                r#"<text x="{x}" y="{ty}" class="label{bold}" text-anchor="end">{name}</text>"#,
                x = label_width - 8.0,
                ty = y + 14.0,
                bold = if i == 0 { " strong" } else { "" },
                name = escape(name),
            );
            let mut x = label_width;
            for (v, count) in counts.iter().enumerate() {
                if *count == 0 || total == 0 {
                    continue;
                }
                let w = *count as f64 / total as f64 * bar_width;
                let _ = write!(
                    page,
                    r#"<rect x="{x:.1}" y="{y}" width="{w:.1}" height="{h}" fill="{color}"><title>{name}, {value}: {count} ({pct})</title></rect>"#,
                    h = row - 8.0,
                    color = PALETTE[v % PALETTE.len()],
                    name = escape(name),
                    value = escape(&composition.values[v]),
                    count = thousands(*count),
                    pct = percent(*count, total),
                );
                x += w;
            }
        }
        page.push_str("</svg></section>\n");
    }
}

/// Members of each segment by the top values of `by` among all profiles.
async fn composition(
    session: &Session,
    everyone: &TypedExpr,
    by: &str,
    by_value: &[BTreeMap<String, u64>],
) -> Result<Composition, Report> {
    let everyone = profiles_by(session, everyone, by).await?;
    let mut ranked: Vec<(&String, &u64)> = everyone.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut values: Vec<String> = ranked
        .iter()
        .take(TOP_VALUES)
        .map(|(v, _)| (*v).clone())
        .collect();
    let other = ranked.len() > TOP_VALUES;
    if other {
        values.push(OTHER.to_string());
    }
    let split = |counts: &BTreeMap<String, u64>| -> Vec<u64> {
        let mut row = vec![0u64; values.len()];
        for (value, count) in counts {
            match values.iter().position(|v| v == value) {
                Some(at) if !(other && at == values.len() - 1) => row[at] += count,
                _ => *row.last_mut().expect("a value") += count,
            }
        }
        row
    };
    Ok(Composition {
        by: by.to_string(),
        counts: by_value.iter().map(split).collect(),
        all: split(&everyone),
        values,
    })
}

/// The values of `by` (a profile column, metric or stage) over the profiles matching
/// `everyone` (`true`), counted.
async fn profiles_by(
    session: &Session,
    everyone: &TypedExpr,
    by: &str,
) -> Result<BTreeMap<String, u64>, Report> {
    let plan = session.plan_condition(everyone, &[by])?;
    let batches = session.execute(plan).await?;
    let mut counts = BTreeMap::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let value = label(batch.column(1), row)
                .map_err(|e| failed(session, "reading an attribute", e))?;
            *counts.entry(value).or_default() += 1;
        }
    }
    Ok(counts)
}

/// How many profiles there are.
async fn count_profiles(session: &Session) -> Result<u64, Report> {
    let table = &session.schema().profiles.name;
    let frame = session
        .context()
        .table(table.as_str())
        .await
        .map_err(|e| failed(session, "reading the profiles", e))?;
    let count = frame
        .count()
        .await
        .map_err(|e| failed(session, "counting the profiles", e))?;
    Ok(count as u64)
}

/// The first text column of the profiles other than the key.
fn default_attribute(session: &Session) -> Option<String> {
    let profiles = &session.schema().profiles;
    profiles
        .columns
        .iter()
        .find(|c| c.name != profiles.key && c.ty == Some(Type::String))
        .map(|c| c.name.clone())
}

/// A value as a label: its text, or "(none)" for null.
fn label(column: &dyn Array, row: usize) -> datafusion::error::Result<String> {
    if column.is_null(row) {
        return Ok(NO_VALUE.to_string());
    }
    let value = ScalarValue::try_from_array(column, row)?;
    Ok(match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s,
        other => other.to_string(),
    })
}

/// A time as a date when it is midnight UTC, else as RFC 3339.
fn moment(nanos: i64) -> String {
    const DAY: i64 = 86_400_000_000_000;
    let text = crate::live::json::format_time(nanos);
    if nanos.rem_euclid(DAY) == 0 {
        text.trim_end_matches("T00:00:00Z").to_string()
    } else {
        text
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".to_string();
    }
    let share = part as f64 / whole as f64 * 100.0;
    if share > 0.0 && share < 1.0 {
        format!("{share:.1}%")
    } else {
        format!("{share:.0}%")
    }
}

/// White to deep blue as `share` goes from 0 to 1.
fn heat(share: f64) -> String {
    let t = share.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(247.0, 31.0),
        mix(251.0, 83.0),
        mix(255.0, 160.0)
    )
}

/// The fill under a history line.
const AREA: &str = "#dbe7f7";

/// Colours that stay apart for the common kinds of colour blindness (Tableau 10).
const PALETTE: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f",
];

const STYLE: &str = "
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #222; margin: 0 auto; max-width: 1000px; padding: 24px 32px 48px; background: #fafafa; }
header h1 { font-size: 26px; margin: 8px 0 4px; }
header .file { font-family: ui-monospace, monospace; font-size: 22px; }
.lede { color: #555; margin: 0 0 24px; }
section { background: #fff; border: 1px solid #e4e4ea; border-radius: 10px; padding: 16px 20px 20px; margin: 0 0 22px; box-shadow: 0 1px 2px rgba(0,0,0,.04); }
h2 { font-size: 18px; margin: 0 0 2px; }
.note { color: #666; font-size: 13px; margin: 0 0 12px; }
svg.chart { max-width: 100%; height: auto; }
svg text { font: 12px system-ui, sans-serif; fill: #333; }
svg text.value { fill: #555; }
svg text.cell { font-size: 11px; }
svg text.strong { font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr)); gap: 10px 16px; }
figure.spark { margin: 0; }
figure.spark figcaption { font-size: 13px; }
figure.spark figcaption span { color: #555; margin-left: 4px; }
figure.spark .delta { color: #4e79a7; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; font-size: 13px; margin: 0 0 10px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
footer { color: #888; font-size: 12px; text-align: center; }
code { font-family: ui-monospace, monospace; font-size: 0.95em; }
";
