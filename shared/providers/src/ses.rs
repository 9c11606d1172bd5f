//! Email through SES v2 `SendEmail` with raw content: the MIME message is built here (with
//! `mail-builder`), so every header stays under our control (`List-Unsubscribe` is written
//! unfolded, as RFC 8058 one-click needs) and the whole message can be read back from the
//! emulator.

use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, MessageTag, RawMessage};
use crm_core::values::Email;
use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;

use crate::{MessageSender, Outbound, ProviderError, Receipt, SendFuture, classify_sdk, wrong_channel};

pub const PROVIDER: &str = "ses";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundEmail {
    pub from: Email,
    pub from_name: String,
    pub to: Email,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Our message id, sent as `X-CRM-Message-Id` (and the basis of `Message-ID`), so a
    /// delivered mail can be traced back to its message.
    pub message_id: String,
    /// Extra headers, e.g. `List-Unsubscribe`.
    pub headers: Vec<(String, String)>,
    /// SES message tags: they come back in bounce and complaint events (letters, digits,
    /// `_` and `-` only).
    pub tags: Vec<(String, String)>,
}

impl OutboundEmail {
    /// The message as RFC 5322 bytes: `multipart/alternative` with the text and HTML parts.
    pub fn to_mime(&self) -> Result<Vec<u8>, ProviderError> {
        let domain = self.from.as_str().rsplit_once('@').map_or("localhost", |(_, d)| d);
        let mut builder = MessageBuilder::new()
            .from((self.from_name.as_str(), self.from.as_str()))
            .to(self.to.as_str())
            .subject(self.subject.as_str())
            .message_id(format!("{}@{domain}", self.message_id))
            .header("X-CRM-Message-Id", Raw::new(self.message_id.as_str()))
            .text_body(self.text.as_str())
            .html_body(self.html.as_str());
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), Raw::new(value.as_str()));
        }
        builder.write_to_vec().map_err(|e| ProviderError::Rejected {
            provider: PROVIDER,
            message: format!("building the MIME message: {e}"),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Ses {
    client: aws_sdk_sesv2::Client,
    configuration_set: Option<String>,
}

impl MessageSender for Ses {
    fn send<'a>(&'a self, message: &'a Outbound) -> SendFuture<'a> {
        match message {
            Outbound::Email(email) => Box::pin(Ses::send(self, email)),
            other => wrong_channel(PROVIDER, other),
        }
    }
}

impl Ses {
    pub fn new(shared: &aws_config::SdkConfig, configuration_set: Option<String>) -> Self {
        Self {
            client: aws_sdk_sesv2::Client::new(&crate::sending_sdk_config(shared)),
            configuration_set,
        }
    }

    /// The same, its client with `interceptor` added (the bench meters the SDK's CPU).
    pub fn with_interceptor(
        &self,
        interceptor: impl aws_smithy_runtime_api::client::interceptors::Intercept + 'static,
    ) -> Self {
        let config = self.client.config().to_builder().interceptor(interceptor).build();
        Self {
            client: aws_sdk_sesv2::Client::from_conf(config),
            configuration_set: self.configuration_set.clone(),
        }
    }

    /// The client, for bootstrap code (creating the local sender identity).
    pub fn client(&self) -> &aws_sdk_sesv2::Client {
        &self.client
    }

    pub async fn send(&self, email: &OutboundEmail) -> Result<Receipt, ProviderError> {
        let raw = RawMessage::builder()
            .data(Blob::new(email.to_mime()?))
            .build()
            .map_err(|e| ProviderError::Rejected {
                provider: PROVIDER,
                message: e.to_string(),
            })?;
        let out = self
            .client
            .send_email()
            .from_email_address(email.from.as_str())
            .destination(Destination::builder().to_addresses(email.to.as_str()).build())
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .set_email_tags(Some(
                email
                    .tags
                    .iter()
                    .filter_map(|(k, v)| MessageTag::builder().name(k).value(v).build().ok())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| classify_sdk(PROVIDER, e))?;
        Ok(Receipt {
            provider: PROVIDER,
            message_id: out.message_id.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mime_message_has_both_parts_and_our_headers() {
        let email = OutboundEmail {
            from: Email::parse("crm@example.com").unwrap(),
            from_name: "Rushbet".into(),
            to: Email::parse("juan@example.com").unwrap(),
            subject: "¡Bienvenido, Juan!".into(),
            html: "<p>Hola Juan</p>".into(),
            text: "Hola Juan".into(),
            message_id: "msg_1".into(),
            headers: vec![("List-Unsubscribe".into(), "<https://x.test/u/1>".into())],
            tags: Vec::new(),
        };
        let mime = String::from_utf8(email.to_mime().unwrap()).unwrap();
        for expected in [
            "From: \"Rushbet\" <crm@example.com>",
            "To: <juan@example.com>",
            "Message-ID: <msg_1@example.com>",
            "X-CRM-Message-Id: msg_1",
            "List-Unsubscribe: <https://x.test/u/1>",
            "multipart/alternative",
            "Hola Juan",
        ] {
            assert!(mime.contains(expected), "{expected} missing from\n{mime}");
        }
        assert!(mime.contains("Subject: =?utf-8?"), "{mime}");
    }
}
