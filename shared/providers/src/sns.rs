//! SMS through SNS `Publish` to an E.164 phone number.

use aws_sdk_sns::types::MessageAttributeValue;
use crm_core::values::PhoneE164;

use crate::{MessageSender, Outbound, ProviderError, Receipt, SendFuture, classify_sdk, wrong_channel};

pub const PROVIDER: &str = "sns";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSms {
    pub to: PhoneE164,
    pub text: String,
    /// Alphanumeric sender id, where the destination country allows one.
    pub sender_id: Option<String>,
    /// Our message id (Laaffic's `orderId`).
    pub message_id: String,
    /// Marketing (`false`) or transactional (`true`, e.g. a test send).
    pub transactional: bool,
}

#[derive(Debug, Clone)]
pub struct Sns {
    client: aws_sdk_sns::Client,
}

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

impl MessageSender for Sns {
    fn send<'a>(&'a self, message: &'a Outbound) -> SendFuture<'a> {
        match message {
            Outbound::Sms(sms) => Box::pin(Sns::send(self, sms)),
            other => wrong_channel(PROVIDER, other),
        }
    }
}

impl Sns {
    pub fn new(shared: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_sns::Client::new(&crate::sending_sdk_config(shared)),
        }
    }

    /// Whether the number is on SNS's own opted-out list (it replied STOP to an SNS sender).
    pub async fn is_opted_out(&self, phone: &PhoneE164) -> Result<bool, ProviderError> {
        let out = self
            .client
            .check_if_phone_number_is_opted_out()
            .phone_number(phone.as_str())
            .send()
            .await
            .map_err(|e| classify_sdk(PROVIDER, e))?;
        Ok(out.is_opted_out)
    }

    pub async fn send(&self, sms: &OutboundSms) -> Result<Receipt, ProviderError> {
        let kind = if sms.transactional {
            "Transactional"
        } else {
            "Promotional"
        };
        let mut publish = self
            .client
            .publish()
            .phone_number(sms.to.as_str())
            .message(&sms.text)
            .message_attributes("AWS.SNS.SMS.SMSType", attribute(kind));
        if let Some(sender) = &sms.sender_id {
            publish = publish.message_attributes("AWS.SNS.SMS.SenderID", attribute(sender));
        }
        let out = publish.send().await.map_err(|e| classify_sdk(PROVIDER, e))?;
        Ok(Receipt {
            provider: PROVIDER,
            message_id: out.message_id.unwrap_or_default(),
        })
    }
}
