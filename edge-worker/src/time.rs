//! UTC calendar fields of a Unix time, for the two timestamps the Worker writes (`x-amz-date` and
//! the message's `received_at`), without a date library in the wasm. Tests compare it with chrono.

/// Year, month, day, hour, minute, second of `secs` since the epoch, for years 0 to 9999.
fn civil(secs: i64) -> Option<(i64, u32, u32, u32, u32, u32)> {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's days-to-civil: eras of 400 years starting on 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (0..=9999).contains(&year).then_some((
        year,
        month,
        day,
        of_day / 3_600,
        of_day / 60 % 60,
        of_day % 60,
    ))
}

/// `YYYYMMDDTHHMMSSZ` (SigV4's `x-amz-date`).
pub fn amz_date(secs: i64) -> Option<String> {
    let (y, mo, d, h, mi, s) = civil(secs)?;
    Some(format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`; the epoch for a time past year 9999.
pub fn iso8601_millis(ms: u64) -> String {
    let secs = i64::try_from(ms / 1_000).unwrap_or(i64::MAX);
    let (y, mo, d, h, mi, s, milli) = match civil(secs) {
        Some((y, mo, d, h, mi, s)) => (y, mo, d, h, mi, s, ms % 1_000),
        None => (1970, 1, 1, 0, 0, 0, 0),
    };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Datelike, SecondsFormat, Timelike};

    fn chrono_amz(secs: i64) -> String {
        let t = DateTime::from_timestamp(secs, 0).unwrap();
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    #[test]
    fn agrees_with_chrono_from_year_0_to_9999() {
        let first = DateTime::parse_from_rfc3339("0000-01-01T00:00:00Z")
            .unwrap()
            .timestamp();
        let last = DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
            .unwrap()
            .timestamp();
        // Every day's first and last second across four centuries (leap rules, eras), then a
        // stride with odd offsets over the whole range.
        let leap_span = DateTime::parse_from_rfc3339("1900-01-01T00:00:00Z")
            .unwrap()
            .timestamp();
        let mut times: Vec<i64> = (0..(400 * 366))
            .flat_map(|d| [leap_span + d * 86_400, leap_span + d * 86_400 + 86_399])
            .collect();
        times.extend((first..=last).step_by(7_777_777).map(|t| t + 12_345));
        times.extend([
            first,
            last,
            -1,
            0,
            1,
            951_782_400,
            1_771_372_799,
            1_771_372_800,
        ]);
        for secs in times {
            assert_eq!(
                amz_date(secs).as_deref(),
                Some(chrono_amz(secs).as_str()),
                "{secs}"
            );
            if secs >= 0 {
                let ms = secs as u64 * 1_000 + (secs as u64 % 1_000);
                let expected = DateTime::from_timestamp_millis(ms as i64)
                    .unwrap()
                    .to_rfc3339_opts(SecondsFormat::Millis, true);
                assert_eq!(iso8601_millis(ms), expected, "{ms}");
            }
        }
        assert_eq!(amz_date(first - 1), None);
        assert_eq!(amz_date(last + 1), None);
        assert_eq!(iso8601_millis(u64::MAX), "1970-01-01T00:00:00.000Z");
    }
}
