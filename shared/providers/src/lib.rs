//! The services a message leaves through, each behind a small adapter: SES v2 (email, raw
//! MIME), SNS and Laaffic (SMS), and SQS (the send queue, and the dead-letter queues erasure
//! clears). Each adapter reports failures in
//! the three kinds exactly-once sending needs to tell apart: certainly not sent and worth
//! retrying, certainly not sent and not worth retrying, and unknown.

pub mod laaffic;
pub mod parked;
pub mod queue;
pub mod redtrack;
pub mod ses;
pub mod ses_feedback;
pub mod sns;

use std::error::Error as _;
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Certainly not sent; retrying later may work (throttled, provider error, connection
    /// refused).
    #[error("{provider} unavailable: {message}")]
    Retryable { provider: &'static str, message: String },
    /// Certainly not sent; retrying will not help (bad address, credentials, balance).
    #[error("{provider} refused: {message}")]
    Rejected { provider: &'static str, message: String },
    /// The request may have reached the provider (a timeout, a broken answer): whether it
    /// sent is unknown, so it must not be retried.
    #[error("{provider} outcome unknown: {message}")]
    Unknown { provider: &'static str, message: String },
}

impl ProviderError {
    pub fn message(&self) -> &str {
        match self {
            Self::Retryable { message, .. } | Self::Rejected { message, .. } | Self::Unknown { message, .. } => message,
        }
    }
}

/// A message as a provider takes it: one variant per channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Email(ses::OutboundEmail),
    Sms(sns::OutboundSms),
}

impl Outbound {
    fn channel(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Sms(_) => "sms",
        }
    }
}

/// The port every provider sits behind: the sender picks one by channel and the brand's
/// provider (`crm_core::send::Provider`) and hands it the message. A new provider is one
/// file implementing this, one `Provider` variant and its settings.
pub trait MessageSender: Send + Sync {
    fn send<'a>(&'a self, message: &'a Outbound) -> SendFuture<'a>;
}

pub type SendFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Receipt, ProviderError>> + Send + 'a>>;

/// A provider handed a message of a channel it does not carry (a wiring bug, never sent).
pub(crate) fn wrong_channel(provider: &'static str, message: &Outbound) -> SendFuture<'static> {
    let message = format!("{provider} does not send {}", message.channel());
    Box::pin(std::future::ready(Err(ProviderError::Rejected { provider, message })))
}

/// What a provider answered when it accepted a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub provider: &'static str,
    pub message_id: String,
}

/// Provider calls are never retried by the SDK (a retry after a timeout could send twice);
/// the sender decides. Timeouts keep a call well inside the sender's own; the answers are
/// small, so stalled-stream protection (a per-body timer) would only add CPU, as for the
/// store.
pub(crate) fn sending_sdk_config(shared: &aws_config::SdkConfig) -> aws_config::SdkConfig {
    shared
        .to_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .stalled_stream_protection(aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(8))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .build()
}

/// Whether an error chain shows the connection was never made (so nothing was sent).
pub(crate) fn never_connected(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused | AddrNotAvailable | NotConnected | HostUnreachable | NetworkUnreachable
            ) {
                return true;
            }
        }
        source = e.source();
    }
    false
}

/// Sorts an AWS SDK error into the three kinds. A service answer of 5xx or throttling is
/// retryable (the service says it did not act); any other service answer is a refusal; a
/// timeout or an unreadable answer is unknown.
pub(crate) fn classify_sdk<E>(provider: &'static str, err: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message =
        crm_core::values::redact_personal(&aws_smithy_types::error::display::DisplayErrorContext(&err).to_string());
    match &err {
        SdkError::ConstructionFailure(_) => ProviderError::Rejected { provider, message },
        SdkError::DispatchFailure(d) if !d.is_timeout() && err.source().is_some_and(never_connected) => {
            ProviderError::Retryable { provider, message }
        }
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            let code = s.err().code().unwrap_or_default();
            let throttled =
                code.contains("Throttl") || code.contains("TooManyRequests") || code == "LimitExceededException";
            if status >= 500 || throttled {
                ProviderError::Retryable { provider, message }
            } else {
                ProviderError::Rejected { provider, message }
            }
        }
        _ => ProviderError::Unknown { provider, message },
    }
}
