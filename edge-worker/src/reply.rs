//! Small JSON responses. Error bodies are a short code only: never a secret, a signature or
//! anything of the payload.

use worker::{Headers, Response, Result};

pub fn json(status: u16, body: &serde_json::Value) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::from_bytes(serde_json::to_vec(body)?)?
        .with_status(status)
        .with_headers(headers))
}

pub fn error(status: u16, code: &str) -> Result<Response> {
    json(status, &serde_json::json!({ "error": code }))
}

pub fn method_not_allowed(allow: &str) -> Result<Response> {
    let response = error(405, "method_not_allowed")?;
    response.headers().set("allow", allow)?;
    Ok(response)
}
