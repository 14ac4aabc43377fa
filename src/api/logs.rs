//! The options of `GET …/pods/{name}/log`, as the API server reads them
//! (pure), and the `limitBytes` cut.
//!
//! `container`, `follow`, `previous`, `timestamps`, `tailLines`,
//! `sinceSeconds`, `sinceTime` (RFC 3339) and `limitBytes` are honoured;
//! out-of-range values get the API server's validation messages. `since*`
//! and `tailLines` go to the runtime ([`LogOptions`]); `limitBytes` is cut
//! here ([`limit_bytes`]), as Docker has no such option. Parameters that are
//! no log option are ignored, as the API server ignores them.

use futures_util::stream::{self, BoxStream, StreamExt};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::runtime::{LogOptions, Result as RuntimeResult};

/// What a log request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogRequest {
    pub container: Option<String>,
    pub previous: bool,
    pub options: LogOptions,
    /// Stop after this many bytes (`limitBytes`).
    pub limit_bytes: Option<u64>,
}

/// A log option the API server would refuse: the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LogOptionError(pub String);

fn flag(name: &str, value: &str) -> Result<bool, LogOptionError> {
    match value {
        "" | "true" | "1" | "True" | "TRUE" | "t" | "T" => Ok(true),
        "false" | "0" | "False" | "FALSE" | "f" | "F" => Ok(false),
        other => Err(LogOptionError(format!(
            "{name}: Invalid value: {other:?}: must be true or false"
        ))),
    }
}

fn number(name: &str, value: &str) -> Result<i64, LogOptionError> {
    value.parse().map_err(|_| {
        LogOptionError(format!(
            "{name}: Invalid value: {value:?}: must be an integer"
        ))
    })
}

/// Reads the query parameters of a log request at `now` (for
/// `sinceSeconds`).
///
/// Fails, naming the parameter, on a malformed value, `sinceSeconds` or
/// `limitBytes` below 1, a negative `tailLines`, or both `sinceSeconds` and
/// `sinceTime`.
pub fn log_request(
    params: &[(String, String)],
    now: Timestamp,
) -> Result<LogRequest, LogOptionError> {
    let mut req = LogRequest::default();
    let mut since_seconds = None;
    let mut since_time = None;
    for (key, value) in params {
        match key.as_str() {
            "container" => req.container = Some(value.clone()).filter(|c| !c.is_empty()),
            "follow" => req.options.follow = flag(key, value)?,
            "previous" => req.previous = flag(key, value)?,
            "timestamps" => req.options.timestamps = flag(key, value)?,
            "tailLines" => {
                let n = number(key, value)?;
                req.options.tail = Some(usize::try_from(n).map_err(|_| {
                    LogOptionError(format!(
                        "tailLines: Invalid value: {n}: must be greater than or equal to 0"
                    ))
                })?);
            }
            "limitBytes" => {
                let n = number(key, value)?;
                if n < 1 {
                    return Err(LogOptionError(format!(
                        "limitBytes: Invalid value: {n}: must be greater than 0"
                    )));
                }
                req.limit_bytes = Some(n as u64);
            }
            "sinceSeconds" => {
                let n = number(key, value)?;
                if n < 1 {
                    return Err(LogOptionError(format!(
                        "sinceSeconds: Invalid value: {n}: must be greater than 0"
                    )));
                }
                since_seconds = Some(n);
            }
            "sinceTime" => {
                since_time = Some(value.parse::<Timestamp>().map_err(|e| {
                    LogOptionError(format!(
                        "sinceTime: Invalid value: {value:?}: not an RFC 3339 time ({e})"
                    ))
                })?);
            }
            _ => {}
        }
    }
    req.options.since = match (since_seconds, since_time) {
        (Some(_), Some(_)) => {
            return Err(LogOptionError(
                "at most one of `sinceTime` or `sinceSeconds` may be specified".into(),
            ))
        }
        (Some(secs), None) => Some(
            now.checked_sub(SignedDuration::from_secs(secs))
                .unwrap_or(Timestamp::MIN),
        ),
        (None, t) => t,
    };
    Ok(req)
}

/// `stream` cut after `limit` bytes (all of it without a limit); ends as
/// soon as the limit is reached, so a followed log stops too.
pub fn limit_bytes(
    stream: BoxStream<'static, RuntimeResult<bytes::Bytes>>,
    limit: Option<u64>,
) -> BoxStream<'static, RuntimeResult<bytes::Bytes>> {
    let Some(limit) = limit else {
        return stream;
    };
    stream::unfold((stream, limit), |(mut stream, left)| async move {
        if left == 0 {
            return None;
        }
        let item = stream.next().await?;
        Some(match item {
            Ok(mut chunk) => {
                let take = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                chunk.truncate(take);
                (Ok(chunk), (stream, left - take as u64))
            }
            Err(e) => (Err(e), (stream, 0)),
        })
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn now() -> Timestamp {
        "2026-01-01T00:01:00Z".parse().expect("time")
    }

    #[test]
    fn kubectl_log_options_are_read() {
        let r = log_request(
            &params(&[
                ("container", "a"),
                ("follow", "true"),
                ("previous", "true"),
                ("timestamps", "true"),
                ("tailLines", "3"),
                ("limitBytes", "10"),
                ("sinceSeconds", "5"),
                ("pretty", "x"),
            ]),
            now(),
        )
        .expect("valid");
        assert_eq!(r.container.as_deref(), Some("a"));
        assert!(r.previous && r.options.follow && r.options.timestamps);
        assert_eq!(r.options.tail, Some(3));
        assert_eq!(r.limit_bytes, Some(10));
        assert_eq!(
            r.options.since,
            Some("2026-01-01T00:00:55Z".parse().expect("time"))
        );
        let t =
            log_request(&params(&[("sinceTime", "2025-12-31T23:00:00Z")]), now()).expect("valid");
        assert_eq!(
            t.options.since,
            Some("2025-12-31T23:00:00Z".parse().expect("time"))
        );
        assert_eq!(
            log_request(&[], now()).expect("valid"),
            LogRequest::default()
        );
    }

    #[test]
    fn bad_log_options_are_refused_naming_the_parameter() {
        for (q, needle) in [
            (vec![("sinceSeconds", "0")], "sinceSeconds"),
            (vec![("limitBytes", "0")], "limitBytes"),
            (vec![("limitBytes", "x")], "limitBytes"),
            (vec![("tailLines", "-1")], "tailLines"),
            (vec![("sinceTime", "yesterday")], "sinceTime"),
            (vec![("follow", "maybe")], "follow"),
            (
                vec![("sinceSeconds", "5"), ("sinceTime", "2026-01-01T00:00:00Z")],
                "at most one",
            ),
        ] {
            let e = log_request(&params(&q), now()).expect_err(needle);
            assert!(e.0.contains(needle), "{q:?}: {e}");
        }
    }

    #[tokio::test]
    async fn limit_bytes_cuts_the_stream_mid_chunk_and_ends_it() {
        let chunks = stream::iter(
            ["abc", "defg", "hij"]
                .into_iter()
                .map(|s| Ok(bytes::Bytes::from(s))),
        )
        .chain(stream::pending())
        .boxed();
        let got: Vec<_> = limit_bytes(chunks, Some(5)).collect().await;
        let text: Vec<u8> = got
            .into_iter()
            .flat_map(|c| c.expect("chunk").to_vec())
            .collect();
        assert_eq!(text, b"abcde");
        let all = stream::iter([Ok(bytes::Bytes::from("xyz"))]).boxed();
        assert_eq!(limit_bytes(all, None).collect::<Vec<_>>().await.len(), 1);
    }
}
