//! A text or Markdown table of profiles, sorted by score (the catalog listing of `tierforge profile --catalog`).

use crate::profile::DeviceProfile;

/// Short CPU description: `1×x3@3.36 + 2×a715@2.80 + 3×a510@2.00`.
pub fn cpu_summary(p: &DeviceProfile) -> String {
    p.cpu
        .clusters
        .iter()
        .map(|c| {
            let core = c.core.strip_prefix("cortex-").unwrap_or(&c.core);
            match c.max_mhz {
                Some(mhz) => format!("{}×{core}@{:.2}", c.count, f64::from(mhz) / 1000.0),
                None => format!("{}×{core}", c.count),
            }
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Renders `profiles` sorted by score, weakest first, with the score relative to the weakest. `markdown` gives a
/// GitHub table; otherwise columns are aligned with spaces.
pub fn render(profiles: &[&DeviceProfile], markdown: bool) -> String {
    let mut sorted: Vec<&DeviceProfile> = profiles.to_vec();
    sorted.sort_by(|a, b| a.score.total_cmp(&b.score));
    let weakest = sorted
        .first()
        .map_or(1.0, |p| p.score.max(f64::MIN_POSITIVE));
    let header = [
        "id",
        "soc",
        "cpu",
        "RAM GiB",
        "peak GFLOP/s",
        "GEMM mt",
        "dwconv",
        "mem GB/s",
        "score",
        "× weakest",
        "tier",
        "figures",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for p in sorted {
        let m = &p.measured;
        rows.push(vec![
            p.id.clone(),
            p.soc.clone(),
            cpu_summary(p),
            p.ram_bytes.map_or_else(
                || "?".into(),
                |r| format!("{:.1}", r as f64 / (1u64 << 30) as f64),
            ),
            p.peak_gflops()
                .map_or_else(|| "?".into(), |g| format!("{g:.0}")),
            format!("{:.1}", m.gemm_gflops_mt),
            format!("{:.1}", m.dwconv_gflops),
            format!("{:.1}", m.mem_bw_gbps),
            format!("{:.0}", p.score),
            format!("{:.2}", p.score / weakest),
            p.tier.to_string(),
            format!("{:?}", m.source).to_lowercase(),
        ]);
    }
    let mut out = String::new();
    if markdown {
        for (i, row) in rows.iter().enumerate() {
            out += &format!("| {} |\n", row.join(" | "));
            if i == 0 {
                out += &format!("|{}\n", "---|".repeat(row.len()));
            }
        }
    } else {
        let widths: Vec<usize> = (0..header.len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for row in &rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            out += cells.join("  ").trim_end();
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_by_score_with_ratios() {
        let phones = crate::catalog::builtin().unwrap();
        let refs: Vec<&DeviceProfile> = phones.iter().rev().collect();
        let text = render(&refs, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), phones.len() + 1);
        assert!(
            lines[1].starts_with("samsung-galaxy-a01-core"),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("1.00"));
        assert!(lines.last().unwrap().starts_with("xiaomi-14"));
        let md = render(&refs, true);
        assert!(md.lines().nth(1).unwrap().starts_with("|---|"));
        let s23 = phones
            .iter()
            .find(|p| p.id == "samsung-galaxy-s23")
            .unwrap();
        assert_eq!(
            cpu_summary(s23),
            "1×x3@3.36 + 2×a715@2.80 + 2×a710@2.80 + 3×a510@2.00"
        );
    }
}
