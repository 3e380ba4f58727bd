//! HMAC-SHA512 of the webhook verifier through the runtime's WebCrypto (`crypto.subtle`, native
//! code) instead of hashing in wasm. The keys are imported once per isolate (the secrets only
//! change with a new deployment, which is a new isolate) and kept next to the parsed
//! configuration; `shared::signature::verify_delivery_with` does everything else (header grammar,
//! windows, constant-time comparison), the same code the native crates run.

use crate::settle::settled;
use js_sys::{Array, Promise, Uint8Array};
use shared::signature::{WebhookMac, WebhookSecrets};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = importKey)]
    fn import_key(
        format: &str,
        key_data: &Uint8Array,
        algorithm: &JsValue,
        extractable: bool,
        usages: &Array,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = digest)]
    fn subtle_digest(algorithm: &str, data: &Uint8Array) -> Result<Promise, JsValue>;

    #[wasm_bindgen(catch, js_namespace = ["crypto", "subtle"], js_name = sign)]
    fn subtle_sign(algorithm: &str, key: &JsValue, data: &Uint8Array) -> Result<Promise, JsValue>;
}

/// The webhook secrets as WebCrypto HMAC-SHA512 keys, current first.
pub struct WebCryptoMac {
    keys: Vec<JsValue>,
}

impl WebCryptoMac {
    async fn import(secrets: &WebhookSecrets) -> Result<Self, JsValue> {
        let algorithm = js_sys::JSON::parse(r#"{"name":"HMAC","hash":"SHA-512"}"#)?;
        let usages = Array::of1(&JsValue::from_str("sign"));
        let mut keys = Vec::new();
        for secret in secrets.keys() {
            let raw = Uint8Array::from(secret.expose().as_bytes());
            keys.push(settled(&import_key("raw", &raw, &algorithm, false, &usages)?).await?);
        }
        Ok(Self { keys })
    }
}

impl WebhookMac for WebCryptoMac {
    type Error = JsValue;

    fn key_count(&self) -> usize {
        self.keys.len()
    }

    async fn mac(&self, index: usize, timestamp: &str, body: &[u8]) -> Result<[u8; 64], JsValue> {
        // "<t>." + body, assembled in wasm memory and handed to WebCrypto as a view of it: no
        // JavaScript buffer is allocated, filled and later swept for it. Safe because workerd's
        // `sign` reads its input before it returns the promise: all of its WebCrypto runs
        // synchronously, which is why it does not copy its input buffers (the note on that in
        // src/workerd/api/crypto/crypto.c++). And nothing runs between the view's creation and
        // that call, so the view cannot see memory grow. `data` is kept until the tag is in, all
        // the same. (`fetch` is another matter: it keeps a reference to a buffer body.)
        let mut data = Vec::with_capacity(timestamp.len() + 1 + body.len());
        data.extend_from_slice(timestamp.as_bytes());
        data.push(b'.');
        data.extend_from_slice(body);
        let signing = {
            // SAFETY: see above; the view is dropped before any other wasm code (which could
            // grow the memory) runs, and `data` outlives it.
            let view = unsafe { Uint8Array::view(&data) };
            subtle_sign("HMAC", &self.keys[index], &view)?
        };
        let tag = settled(&signing).await?;
        drop(data);
        let tag = Uint8Array::new(&tag);
        let mut out = [0u8; 64];
        if tag.length() as usize != out.len() {
            return Err(JsValue::from_str("HMAC-SHA512 tag of unexpected length"));
        }
        tag.copy_to(&mut out);
        Ok(out)
    }
}

/// This isolate's keys for `secrets`, imported on first use and kept with the configuration.
#[derive(Default)]
pub struct KeyCache(RefCell<Option<Rc<WebCryptoMac>>>);

impl KeyCache {
    pub async fn get(&self, secrets: &WebhookSecrets) -> Result<Rc<WebCryptoMac>, JsValue> {
        if let Some(keys) = self.0.borrow().as_ref() {
            return Ok(Rc::clone(keys));
        }
        // Two first requests at once may both import; either result is the same keys.
        let keys = Rc::new(WebCryptoMac::import(secrets).await?);
        *self.0.borrow_mut() = Some(Rc::clone(&keys));
        Ok(keys)
    }
}

/// SHA-256 of bytes already on the JavaScript side.
pub async fn sha256(data: &Uint8Array) -> Result<[u8; 32], JsValue> {
    let digest = Uint8Array::new(&settled(&subtle_digest("SHA-256", data)?).await?);
    let mut out = [0u8; 32];
    if digest.length() as usize != out.len() {
        return Err(JsValue::from_str("SHA-256 digest of unexpected length"));
    }
    digest.copy_to(&mut out);
    Ok(out)
}
