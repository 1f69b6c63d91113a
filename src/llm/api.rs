//! Which LLM API a request speaks, and what its request and response say: the model, the
//! tools offered, the tool calls asked for (whole, or reassembled from a stream of server-
//! sent events) and the token usage. OpenAI chat completions and responses, Anthropic
//! messages.
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    OpenAiChat,
    OpenAiResponses,
    AnthropicMessages,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Api::OpenAiChat => "openai.chat",
            Api::OpenAiResponses => "openai.responses",
            Api::AnthropicMessages => "anthropic.messages",
        }
    }

    /// By the request target (proxies and compatible servers keep these paths).
    pub fn recognise(method: &str, path: &str) -> Option<Api> {
        if method != "POST" {
            return None;
        }
        let p = path.split('?').next().unwrap_or("").trim_end_matches('/');
        if p.ends_with("/chat/completions") {
            Some(Api::OpenAiChat)
        } else if p.ends_with("/responses") {
            Some(Api::OpenAiResponses)
        } else if p.ends_with("/v1/messages") || p == "/messages" {
            Some(Api::AnthropicMessages)
        } else {
            None
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Request {
    pub model: String,
    pub stream: bool,
    pub tools: Vec<String>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Call {
    pub id: String,
    pub name: String,
    /// JSON text.
    pub arguments: String,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reply {
    pub model: String,
    pub calls: Vec<Call>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// A stream so far: the ids of the calls whose block has closed (their arguments are
    /// whole), which an agent may run before the message ends.
    pub closed: Vec<String>,
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

pub fn request(api: Api, body: &Value) -> Request {
    let tools = body["tools"].as_array().cloned().unwrap_or_default();
    let tools = tools
        .iter()
        .filter_map(|t| {
            let name = match api {
                Api::OpenAiChat => t["function"]["name"].as_str(),
                // Built-in tools (web_search, ...) have a type and no name.
                Api::OpenAiResponses => t["name"].as_str().or(t["type"].as_str()),
                Api::AnthropicMessages => t["name"].as_str(),
            };
            name.map(str::to_string)
        })
        .collect();
    Request {
        model: s(&body["model"]),
        stream: body["stream"].as_bool().unwrap_or(false),
        tools,
    }
}

/// A whole (not streamed) response body.
pub fn reply(api: Api, body: &Value) -> Reply {
    let mut r = Reply {
        model: s(&body["model"]),
        ..Default::default()
    };
    let u = &body["usage"];
    match api {
        Api::OpenAiChat => {
            for c in body["choices"].as_array().into_iter().flatten() {
                for t in c["message"]["tool_calls"].as_array().into_iter().flatten() {
                    r.calls.push(Call {
                        id: s(&t["id"]),
                        name: s(&t["function"]["name"]),
                        arguments: s(&t["function"]["arguments"]),
                    });
                }
            }
            r.input_tokens = u["prompt_tokens"].as_u64();
            r.output_tokens = u["completion_tokens"].as_u64();
        }
        Api::OpenAiResponses => {
            for o in body["output"].as_array().into_iter().flatten() {
                if o["type"] == "function_call" {
                    r.calls.push(Call {
                        id: s(&o["call_id"]),
                        name: s(&o["name"]),
                        arguments: s(&o["arguments"]),
                    });
                }
            }
            r.input_tokens = u["input_tokens"].as_u64();
            r.output_tokens = u["output_tokens"].as_u64();
        }
        Api::AnthropicMessages => {
            for c in body["content"].as_array().into_iter().flatten() {
                if c["type"] == "tool_use" {
                    r.calls.push(Call {
                        id: s(&c["id"]),
                        name: s(&c["name"]),
                        arguments: c["input"].to_string(),
                    });
                }
            }
            r.input_tokens = u["input_tokens"].as_u64();
            r.output_tokens = u["output_tokens"].as_u64();
        }
    }
    r
}

/// Whether a streamed body so far holds the API's last event, whole.
pub fn stream_done(api: Api, body: &[u8]) -> bool {
    let marker: &[u8] = match api {
        Api::OpenAiChat => b"data: [DONE]",
        Api::OpenAiResponses => b"response.completed",
        Api::AnthropicMessages => b"message_stop",
    };
    match body.windows(marker.len()).rposition(|w| w == marker) {
        Some(at) => {
            let rest = &body[at..];
            rest.windows(2).any(|w| w == b"\n\n") || rest.windows(4).any(|w| w == b"\r\n\r\n")
        }
        None => false,
    }
}

/// A streamed response: the `data` of each server-sent event, in order.
pub fn streamed(api: Api, events: &[String]) -> Reply {
    let mut r = Reply::default();
    // Tool calls arrive in pieces keyed by their index in the message.
    let mut parts: std::collections::BTreeMap<u64, Call> = Default::default();
    let mut closed: std::collections::BTreeSet<u64> = Default::default();
    let mut all_closed = false;
    for data in events {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue; // [DONE], keep-alives
        };
        match api {
            Api::OpenAiChat => {
                if let Some(m) = v["model"].as_str() {
                    r.model = m.to_string();
                }
                for c in v["choices"].as_array().into_iter().flatten() {
                    // The message ends: every call in it is whole.
                    all_closed |= !c["finish_reason"].is_null();
                    for t in c["delta"]["tool_calls"].as_array().into_iter().flatten() {
                        let i = t["index"].as_u64().unwrap_or(0);
                        // Calls stream one after another: the next one closes those before.
                        closed.extend(parts.keys().copied().filter(|k| *k < i));
                        let p = parts.entry(i).or_default();
                        if let Some(id) = t["id"].as_str() {
                            p.id = id.to_string();
                        }
                        if let Some(n) = t["function"]["name"].as_str() {
                            p.name.push_str(n);
                        }
                        if let Some(a) = t["function"]["arguments"].as_str() {
                            p.arguments.push_str(a);
                        }
                    }
                }
                if v["usage"].is_object() {
                    r.input_tokens = v["usage"]["prompt_tokens"].as_u64();
                    r.output_tokens = v["usage"]["completion_tokens"].as_u64();
                }
            }
            Api::OpenAiResponses => {
                // The last event carries the whole response.
                if v["type"] == "response.completed" {
                    let whole = reply(api, &v["response"]);
                    return whole;
                }
                if v["type"] == "response.output_item.done" && v["item"]["type"] == "function_call"
                {
                    let i = v["output_index"].as_u64().unwrap_or(parts.len() as u64);
                    closed.insert(i);
                    parts.insert(
                        i,
                        Call {
                            id: s(&v["item"]["call_id"]),
                            name: s(&v["item"]["name"]),
                            arguments: s(&v["item"]["arguments"]),
                        },
                    );
                }
            }
            Api::AnthropicMessages => match v["type"].as_str().unwrap_or("") {
                "message_start" => {
                    r.model = s(&v["message"]["model"]);
                    r.input_tokens = v["message"]["usage"]["input_tokens"].as_u64();
                }
                "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                    let b = &v["content_block"];
                    parts.insert(
                        v["index"].as_u64().unwrap_or(0),
                        Call {
                            id: s(&b["id"]),
                            name: s(&b["name"]),
                            arguments: String::new(),
                        },
                    );
                }
                "content_block_delta" if v["delta"]["type"] == "input_json_delta" => {
                    if let Some(p) = parts.get_mut(&v["index"].as_u64().unwrap_or(0)) {
                        p.arguments
                            .push_str(v["delta"]["partial_json"].as_str().unwrap_or(""));
                    }
                }
                "content_block_stop" => {
                    closed.extend(v["index"].as_u64());
                }
                "message_stop" => all_closed = true,
                "message_delta" => {
                    if let Some(n) = v["usage"]["output_tokens"].as_u64() {
                        r.output_tokens = Some(n);
                    }
                }
                _ => {}
            },
        }
    }
    r.closed = parts
        .iter()
        .filter(|(i, _)| all_closed || closed.contains(i))
        .map(|(_, c)| c.id.clone())
        .collect();
    r.calls = parts.into_values().collect();
    if api == Api::AnthropicMessages {
        for c in &mut r.calls {
            if c.arguments.is_empty() {
                c.arguments = "{}".into();
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_streamed_call_is_closed_when_its_block_ends() {
        let anthropic = [
            r#"{"type":"message_start","message":{"model":"m","usage":{"input_tokens":3}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t1","name":"bash"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"cmd\":\"id\"}"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t2","name":"bash"}}"#,
        ]
        .map(String::from);
        let r = streamed(Api::AnthropicMessages, &anthropic[..3]);
        assert!(r.closed.is_empty(), "arguments may still grow");
        let r = streamed(Api::AnthropicMessages, &anthropic);
        assert_eq!(r.closed, ["t1"]);
        let chat = [
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"a","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"c2","function":{"name":"b","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
        ]
        .map(String::from);
        assert!(streamed(Api::OpenAiChat, &chat[..1]).closed.is_empty());
        assert_eq!(streamed(Api::OpenAiChat, &chat[..2]).closed, ["c1"]);
        assert_eq!(streamed(Api::OpenAiChat, &chat).closed, ["c1", "c2"]);
    }

    #[test]
    fn recognises_the_three_apis_by_path() {
        assert_eq!(
            Api::recognise("POST", "/v1/chat/completions"),
            Some(Api::OpenAiChat)
        );
        assert_eq!(
            Api::recognise(
                "POST",
                "/openai/deployments/x/chat/completions?api-version=1"
            ),
            Some(Api::OpenAiChat)
        );
        assert_eq!(
            Api::recognise("POST", "/v1/responses"),
            Some(Api::OpenAiResponses)
        );
        assert_eq!(
            Api::recognise("POST", "/v1/messages"),
            Some(Api::AnthropicMessages)
        );
        assert_eq!(Api::recognise("GET", "/v1/chat/completions"), None);
        assert_eq!(Api::recognise("POST", "/api/tickets"), None);
    }

    #[test]
    fn requests_name_model_and_tools() {
        let chat = json!({"model":"gpt-4o","tools":[{"type":"function","function":{"name":"run_shell"}}],"stream":true});
        assert_eq!(
            request(Api::OpenAiChat, &chat),
            Request {
                model: "gpt-4o".into(),
                stream: true,
                tools: vec!["run_shell".into()]
            }
        );
        let resp = json!({"model":"o4","tools":[{"type":"function","name":"read_file"},{"type":"web_search"}]});
        assert_eq!(
            request(Api::OpenAiResponses, &resp).tools,
            vec!["read_file", "web_search"]
        );
        let anth = json!({"model":"claude","tools":[{"name":"bash","input_schema":{}}]});
        assert_eq!(request(Api::AnthropicMessages, &anth).tools, vec!["bash"]);
    }

    #[test]
    fn whole_replies_give_calls_and_usage() {
        let chat = json!({"model":"m","choices":[{"message":{"tool_calls":[{"id":"c1","type":"function","function":{"name":"run_shell","arguments":"{\"command\":\"ls\"}"}}]}}],"usage":{"prompt_tokens":10,"completion_tokens":3}});
        let r = reply(Api::OpenAiChat, &chat);
        assert_eq!(r.calls[0].name, "run_shell");
        assert_eq!(r.calls[0].arguments, r#"{"command":"ls"}"#);
        assert_eq!((r.input_tokens, r.output_tokens), (Some(10), Some(3)));
        let anth = json!({"model":"claude","content":[{"type":"text","text":"hi"},{"type":"tool_use","id":"t1","name":"bash","input":{"cmd":"id"}}],"usage":{"input_tokens":5,"output_tokens":7}});
        let r = reply(Api::AnthropicMessages, &anth);
        assert_eq!(r.calls[0].arguments, r#"{"cmd":"id"}"#);
        assert_eq!(r.output_tokens, Some(7));
        let resp = json!({"model":"o4","output":[{"type":"function_call","call_id":"f1","name":"read_file","arguments":"{\"path\":\"/etc/hosts\"}"}],"usage":{"input_tokens":1,"output_tokens":2}});
        assert_eq!(reply(Api::OpenAiResponses, &resp).calls[0].id, "f1");
    }

    #[test]
    fn streamed_tool_calls_are_reassembled() {
        let chat: Vec<String> = [
            r#"{"model":"m","choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"run_shell","arguments":""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"command\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"id\"}"}}]}}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}"#,
            "[DONE]",
        ]
        .map(String::from)
        .to_vec();
        let r = streamed(Api::OpenAiChat, &chat);
        assert_eq!(
            r.calls,
            vec![Call {
                id: "c1".into(),
                name: "run_shell".into(),
                arguments: r#"{"command":"id"}"#.into()
            }]
        );
        assert_eq!(r.input_tokens, Some(4));
        let anth: Vec<String> = [
            r#"{"type":"message_start","message":{"model":"claude","usage":{"input_tokens":9}}}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"bash","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"cmd\": \"id\"}"}}"#,
            r#"{"type":"message_delta","usage":{"output_tokens":11}}"#,
        ]
        .map(String::from)
        .to_vec();
        let r = streamed(Api::AnthropicMessages, &anth);
        assert_eq!(r.calls[0].name, "bash");
        assert_eq!(r.calls[0].arguments, r#"{"cmd": "id"}"#);
        assert_eq!((r.input_tokens, r.output_tokens), (Some(9), Some(11)));
        let resp: Vec<String> = [
            r#"{"type":"response.created"}"#,
            r#"{"type":"response.completed","response":{"model":"o4","output":[{"type":"function_call","call_id":"f","name":"x","arguments":"{}"}],"usage":{"input_tokens":1,"output_tokens":1}}}"#,
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(streamed(Api::OpenAiResponses, &resp).calls[0].name, "x");
    }
}
