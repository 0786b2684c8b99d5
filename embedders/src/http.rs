//! [`JsonEndpoint`]: one `POST` endpoint of an OpenAI-compatible JSON API over a blocking
//! HTTP client (`ureq`, rustls). Shared by [`OpenAiCompatibleEmbedder`](crate::OpenAiCompatibleEmbedder)
//! and the chat client of `reasonbank-reasoning`, which map [`HttpFailure`] into their own
//! errors. Call it from a blocking context (tokio's blocking pool).

use std::time::Duration;

/// Longest excerpt of a response body kept in an error, in bytes.
pub const EXCERPT_BYTES: usize = 1024;

/// `POST {base_url}/{path}` with a JSON body, an optional bearer key and a global timeout.
#[derive(Clone)]
pub struct JsonEndpoint {
    agent: ureq::Agent,
    url: String,
    api_key: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for JsonEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("JsonEndpoint")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where and how to reach an OpenAI-compatible API: the base URL, the bearer key and the
/// timeout of one request. What the embedder's and the chat client's builders share; its
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct ApiSettings {
    /// The API base, up to and including `/v1` (e.g. `http://localhost:11434/v1` for ollama).
    pub base_url: String,
    /// Bearer token sent as `Authorization`; local servers need none.
    pub api_key: Option<String>,
    /// Time allowed for a whole request, connection to last byte.
    pub timeout: Duration,
}

impl std::fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSettings")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ApiSettings {
    /// OpenAI's own API base, the default of every builder.
    pub const OPENAI_BASE_URL: &'static str = "https://api.openai.com/v1";

    /// OpenAI's API, no key, requests timing out after `timeout`.
    pub fn openai(timeout: Duration) -> Self {
        ApiSettings {
            base_url: Self::OPENAI_BASE_URL.into(),
            api_key: None,
            timeout,
        }
    }

    /// The endpoint `{base_url}/{path}` with these settings.
    ///
    /// # Errors
    /// As [`JsonEndpoint::new`]: a base URL that is not `http://` or `https://`, or a zero
    /// timeout.
    pub fn endpoint(&self, path: &str) -> Result<JsonEndpoint, String> {
        JsonEndpoint::new(&self.base_url, path, self.api_key.clone(), self.timeout)
    }
}

/// The `base_url`, `api_key` and `timeout` setters of a builder that keeps its connection in
/// a field `api: ApiSettings`, written once for the embedder's, the reranker's and the chat
/// client's builders. Used inside the builder's `impl` block, with the doc text of the two
/// setters whose defaults differ between builders:
///
/// ```ignore
/// impl MyBuilder {
///     reasonbank_embedders::api_settings_setters! {
///         base_url: "The API base, up to and including `/v1`. Defaults to ...",
///         timeout: "Time allowed for a whole request. Defaults to 30 seconds.",
///     }
/// }
/// ```
#[macro_export]
macro_rules! api_settings_setters {
    (base_url: $base_url_doc:literal, timeout: $timeout_doc:literal $(,)?) => {
        #[doc = $base_url_doc]
        pub fn base_url(&mut self, url: impl Into<String>) -> &mut Self {
            self.api.base_url = url.into();
            self
        }

        /// Bearer token sent as `Authorization`. Defaults to none (local servers need none).
        pub fn api_key(&mut self, key: impl Into<String>) -> &mut Self {
            self.api.api_key = Some(key.into());
            self
        }

        #[doc = $timeout_doc]
        pub fn timeout(&mut self, timeout: ::std::time::Duration) -> &mut Self {
            self.api.timeout = timeout;
            self
        }
    };
}

/// Why a request to a [`JsonEndpoint`] failed.
#[derive(Debug)]
pub enum HttpFailure {
    /// No complete answer within the timeout.
    Timeout,
    /// Below the HTTP level: connection refused, TLS, DNS, a body over the size limit.
    Transport(ureq::Error),
    /// A status outside 2xx, with an excerpt of the body (see [`excerpt`]).
    Status {
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
}

impl JsonEndpoint {
    /// The endpoint `{base_url}/{path}` (a trailing `/` of `base_url` is ignored).
    ///
    /// # Errors
    /// Why the settings are unusable: a base URL that is not `http://` or `https://`, or a
    /// zero timeout.
    pub fn new(
        base_url: &str,
        path: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<JsonEndpoint, String> {
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(format!(
                "base_url must start with http:// or https://, got {base_url:?}"
            ));
        }
        if timeout.is_zero() {
            return Err("the timeout must be non-zero".into());
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(JsonEndpoint {
            agent,
            url: format!("{}/{path}", base_url.trim_end_matches('/')),
            api_key,
            timeout,
        })
    }

    /// The full URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The timeout of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Posts `body` and returns the body of a 2xx answer, read up to `limit` bytes.
    ///
    /// # Errors
    /// [`HttpFailure`]: a timeout, a transport failure (including a body over `limit`), or
    /// a status outside 2xx.
    pub fn post(&self, body: &serde_json::Value, limit: u64) -> Result<String, HttpFailure> {
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let failure = |e: ureq::Error| match e {
            ureq::Error::Timeout(_) => HttpFailure::Timeout,
            other => HttpFailure::Transport(other),
        };
        let response = request.send(body.to_string()).map_err(failure)?;
        let status = response.status().as_u16();
        let text = response
            .into_body()
            .with_config()
            .limit(limit)
            .read_to_string()
            .map_err(failure)?;
        if !(200..300).contains(&status) {
            return Err(HttpFailure::Status {
                status,
                body: excerpt(&text),
            });
        }
        Ok(text)
    }
}

/// The start of `text`, at most [`EXCERPT_BYTES`] bytes, cut at a character boundary.
pub fn excerpt(text: &str) -> String {
    let mut end = text.len().min(EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let t = Duration::from_secs(1);
        assert!(JsonEndpoint::new("ftp://x", "a", None, t).is_err());
        assert!(JsonEndpoint::new("http://x", "a", None, Duration::ZERO).is_err());
        let e = JsonEndpoint::new(
            "https://x/v1/",
            "chat/completions",
            Some("sk-secret".into()),
            t,
        )
        .unwrap();
        assert_eq!(e.url(), "https://x/v1/chat/completions");
        assert!(!format!("{e:?}").contains("sk-secret"));
    }

    #[test]
    fn excerpts_cut_at_character_boundaries() {
        let s = "é".repeat(EXCERPT_BYTES);
        let e = excerpt(&s);
        assert!(e.len() <= EXCERPT_BYTES && e.chars().all(|c| c == 'é'));
        assert_eq!(excerpt("short"), "short");
    }
}
