//! A deliberately small HTTP/1.1 load generator: keep-alive connections that each send
//! one pre-built request at a time and time its answer. Much cheaper per request than
//! a full client, so on a small machine most of the CPU goes to the server measured.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stats::{LatencySummary, ratio, summarise};

/// Builds a `POST` request with a JSON body and an optional `Authorization` value.
pub fn post_request(path: &str, authorization: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(value) = authorization {
        request.push_str(&format!("Authorization: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Why reading an answer failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The socket failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The answer was not HTTP/1.1 with a `Content-Length`.
    #[error("unreadable answer: {0}")]
    Malformed(&'static str),
}

/// The status line and the length of one complete answer at the start of `buffer`, or
/// `None` while it is incomplete.
pub fn parse_answer(buffer: &[u8]) -> Result<Option<(u16, usize)>, ReadError> {
    let Some(header_end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..header_end])
        .map_err(|_| ReadError::Malformed("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or(ReadError::Malformed("no status line"))?;
    let length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .ok_or(ReadError::Malformed("no Content-Length"))?;
    let total = header_end + 4 + length;
    Ok((buffer.len() >= total).then_some((status, total)))
}

/// One keep-alive connection.
pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    /// Connects (no Nagle delay).
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    /// Sends `request` and reads the whole answer; returns its status.
    pub async fn send(&mut self, request: &[u8]) -> Result<u16, ReadError> {
        self.stream.write_all(request).await?;
        loop {
            if let Some((status, total)) = parse_answer(&self.buffer)? {
                self.buffer.drain(..total);
                return Ok(status);
            }
            let mut chunk = [0u8; 4096];
            let read = self.stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(ReadError::Malformed("connection closed mid-answer"));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

/// What a load run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadResult {
    /// Answers with status 200.
    pub ok: u64,
    /// Other answers and failed requests.
    pub errors: u64,
    /// Measured seconds.
    pub seconds: f64,
    /// Successful requests per second.
    pub per_second: f64,
    /// Latency of the successful requests.
    pub latency: LatencySummary,
}

/// Drives `connections` connections, each sending `request` back to back, for
/// `warmup` (not measured) then `duration`.
pub async fn drive(
    addr: SocketAddr,
    request: &[u8],
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> std::io::Result<LoadResult> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop_at = measure_from + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let request = request.to_vec();
        let mut connection = Connection::open(addr).await?;
        tasks.spawn(async move {
            let mut samples = Vec::new();
            let (mut ok, mut errors) = (0u64, 0u64);
            loop {
                let sent = Instant::now();
                if sent >= stop_at {
                    break;
                }
                let answer = connection.send(&request).await;
                let measured = sent >= measure_from;
                match answer {
                    Ok(200) if measured => {
                        ok += 1;
                        samples.push(sent.elapsed());
                    }
                    Ok(200) => {}
                    Ok(_) if measured => errors += 1,
                    Ok(_) => {}
                    Err(_) => {
                        if measured {
                            errors += 1;
                        }
                        match Connection::open(addr).await {
                            Ok(fresh) => connection = fresh,
                            Err(_) => break,
                        }
                    }
                }
            }
            (ok, errors, samples)
        });
    }
    let mut result = LoadResult::default();
    let mut samples = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((ok, errors, mut connection_samples)) = joined {
            result.ok += ok;
            result.errors += errors;
            samples.append(&mut connection_samples);
        }
    }
    result.seconds = duration.as_secs_f64();
    result.per_second = ratio(result.ok as f64, result.seconds);
    result.latency = summarise(&samples);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_found_whole() {
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1";
        assert_eq!(parse_answer(answer).unwrap(), Some((200, 40)));
        assert_eq!(parse_answer(&answer[..39]).unwrap(), None);
        assert_eq!(parse_answer(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_answer(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn requests_carry_length_and_token() {
        let request = post_request("/x", Some("Bearer t"), b"{}");
        let text = String::from_utf8(request).unwrap();
        assert!(text.starts_with("POST /x HTTP/1.1\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.contains("Authorization: Bearer t\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));
    }

    #[tokio::test]
    async fn drives_a_real_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/x", axum::routing::post(|| async { "ok" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let request = post_request("/x", None, b"{}");
        let result = drive(
            addr,
            &request,
            4,
            Duration::from_millis(20),
            Duration::from_millis(200),
        )
        .await
        .unwrap();
        assert!(result.ok > 10, "{result:?}");
        assert_eq!(result.errors, 0);
        assert_eq!(result.latency.count as u64, result.ok);
    }
}
