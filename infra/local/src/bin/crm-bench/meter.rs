//! The AWS SDK's own CPU inside a request's calls: an interceptor on every client the bench
//! makes notes the process's CPU time at each call's first hook (`read_before_execution`)
//! and its last (`read_after_execution`). Serialising, signing, sending, receiving and
//! parsing are between the two; what the SDK does before the first hook (applying the
//! client's runtime plugins to the call) is not: `Floor::whole` scales the part seen to the
//! whole by the share the floor's own calls showed.
//! Overlapping calls are counted once (from the first start to the last end).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::measure::cpu_time;

#[derive(Debug, Default)]
struct State {
    /// Calls under way.
    open: u32,
    /// CPU time when the first of them started.
    since: Duration,
    /// Inside the SDK since the last `take`.
    spent: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct SdkMeter(Arc<Mutex<State>>);

/// The one meter every client of the bench reports to.
pub fn meter() -> SdkMeter {
    static METER: OnceLock<SdkMeter> = OnceLock::new();
    METER.get_or_init(SdkMeter::default).clone()
}

impl SdkMeter {
    /// CPU inside the SDK's calls since the last `take`. Taken between requests, when no
    /// call is under way: a call still open then was dropped before it ended (one side of a
    /// failed `try_join!`), and is forgotten rather than left to hold the meter open.
    pub fn take(&self) -> Duration {
        let mut s = self.0.lock().expect("the meter's lock");
        s.open = 0;
        std::mem::take(&mut s.spent)
    }
}

impl Intercept for SdkMeter {
    fn name(&self) -> &'static str {
        "SdkMeter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut s = self.0.lock().expect("the meter's lock");
        if s.open == 0 {
            s.since = cpu_time();
        }
        s.open += 1;
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut s = self.0.lock().expect("the meter's lock");
        s.open = s.open.saturating_sub(1);
        if s.open == 0 {
            let since = s.since;
            s.spent += cpu_time().saturating_sub(since);
        }
        Ok(())
    }
}
