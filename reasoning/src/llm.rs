//! A minimal client for OpenAI-compatible `POST {base_url}/chat/completions` endpoints, and
//! the parsing of what LLMs answer.
//!
//! Requests go through a blocking HTTP client (`ureq`, rustls) on tokio's blocking pool. Every
//! failure is typed: [`Error::Timeout`], [`Error::Http`], [`Error::Transport`], and
//! [`Error::MalformedLlmOutput`] for a response that is not a chat completion.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use reasonbank_embedders::http::{ApiSettings, HttpFailure, JsonEndpoint, excerpt};

use crate::{Error, Result};

const MAX_RESPONSE_BYTES: u64 = 16 << 20;

/// Settings of a [`ChatClient`]. Every setter documents its default.
#[derive(Clone, Debug)]
pub struct ChatClientBuilder {
    api: ApiSettings,
    model: String,
    temperature: f32,
    max_tokens: u32,
}

impl ChatClientBuilder {
    reasonbank_embedders::api_settings_setters! {
        base_url: "The API base, up to and including `/v1`; requests go to `{base_url}/chat/completions`.
         Defaults to `https://api.openai.com/v1`. For ollama: `http://localhost:11434/v1`.",
        timeout: "Time allowed for a whole request, connection to last byte. Defaults to 60 seconds.",
    }
    /// Sampling temperature. Defaults to 0.0 (the paper's judge and extractor are run
    /// deterministically; MaTTS diversity comes from the agent's trajectories, not from here).
    pub fn temperature(&mut self, t: f32) -> &mut Self {
        self.temperature = t;
        self
    }
    /// Most tokens the model may answer with. Defaults to 1024.
    pub fn max_tokens(&mut self, n: u32) -> &mut Self {
        self.max_tokens = n;
        self
    }

    /// The client.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty model, a zero timeout or a URL that is not http(s).
    pub fn build(&self) -> Result<ChatClient> {
        let bad = |reason: String| {
            Err(Error::InvalidInput {
                what: "chat client",
                reason,
            })
        };
        if self.model.is_empty() || self.api.timeout.is_zero() {
            return bad("model must be non-empty and the timeout non-zero".into());
        }
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad(format!(
                "temperature must be >= 0, got {}",
                self.temperature
            ));
        }
        let endpoint = match self.api.endpoint("chat/completions") {
            Ok(e) => e,
            Err(reason) => return bad(reason),
        };
        Ok(ChatClient {
            inner: Arc::new(Inner {
                endpoint,
                config: self.clone(),
            }),
        })
    }
}

/// A client of one OpenAI-compatible chat model; cheap to clone.
#[derive(Clone)]
pub struct ChatClient {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: JsonEndpoint,
    config: ChatClientBuilder,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("url", &self.inner.endpoint.url())
            .field("model", &self.inner.config.model)
            .finish_non_exhaustive()
    }
}

/// One chat message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: "system",
            content: content.into(),
        }
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: "user",
            content: content.into(),
        }
    }
}

impl ChatClient {
    /// A builder for `model`; other settings default (see the setters).
    pub fn builder(model: impl Into<String>) -> ChatClientBuilder {
        ChatClientBuilder {
            api: ApiSettings::openai(Duration::from_secs(60)),
            model: model.into(),
            temperature: 0.0,
            max_tokens: 1024,
        }
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        self.inner.endpoint.url()
    }

    /// Sends `messages` and returns the first choice's message content.
    ///
    /// # Errors
    /// [`Error::Timeout`], [`Error::Transport`], [`Error::Http`] for a non-2xx status,
    /// [`Error::MalformedLlmOutput`] when the body is not a chat completion with a string
    /// `choices[0].message.content`, [`Error::Join`] if the blocking task fails.
    pub async fn complete(&self, messages: &[Message]) -> Result<String> {
        let inner = Arc::clone(&self.inner);
        let messages = messages.to_vec();
        tokio::task::spawn_blocking(move || inner.request(&messages))
            .await
            .map_err(Error::Join)?
    }
}

impl Inner {
    fn request(&self, messages: &[Message]) -> Result<String> {
        let c = &self.config;
        let body = json!({
            "model": c.model,
            "messages": messages
                .iter()
                .map(|m| json!({"role": m.role, "content": m.content}))
                .collect::<Vec<_>>(),
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
        });
        let url = || self.endpoint.url().to_owned();
        let text = self
            .endpoint
            .post(&body, MAX_RESPONSE_BYTES)
            .map_err(|e| match e {
                HttpFailure::Timeout => Error::Timeout {
                    url: url(),
                    after: c.api.timeout,
                },
                HttpFailure::Transport(source) => Error::Transport {
                    url: url(),
                    source: Box::new(source),
                },
                HttpFailure::Status { status, body } => Error::Http {
                    url: url(),
                    status,
                    body,
                },
            })?;
        let malformed = |reason: &str| Error::MalformedLlmOutput {
            what: "chat response",
            reason: reason.to_owned(),
            excerpt: excerpt(&text),
        };
        let v: Value =
            serde_json::from_str(&text).map_err(|_| malformed("the body is not JSON"))?;
        let content = v
            .pointer("/choices/0/message/content")
            .ok_or_else(|| malformed("no `choices[0].message.content`"))?;
        content
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| malformed("`choices[0].message.content` is not a string"))
    }
}

/// Finds the first complete JSON value (object or array) in `text`: LLMs wrap JSON in prose
/// and code fences. Strings and escapes are respected when matching brackets.
pub(crate) fn extract_json(text: &str) -> Option<Value> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(off) = text[start..].find(['{', '[']) {
        let begin = start + off;
        let mut depth = 0usize;
        let mut in_str = false;
        let mut escaped = false;
        for (i, &b) in bytes.iter().enumerate().skip(begin) {
            if in_str {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        if let Ok(v) = serde_json::from_str(&text[begin..=i]) {
                            return Some(v);
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
        start = begin + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_found_in_prose_and_fences() {
        let v = extract_json("Sure!\n```json\n[{\"a\": \"x]}\"}]\n```\nDone.").unwrap();
        assert_eq!(v[0]["a"], "x]}");
        let v = extract_json("noise { not json } then {\"k\": 1}").unwrap();
        assert_eq!(v["k"], 1);
        assert!(extract_json("no json at all").is_none());
        assert!(extract_json("{\"unterminated\": ").is_none());
    }
}
