//! `/dashboard/influencers/{id}` and `/dashboard/campaigns/{id}`: one influencer's or
//! campaign's page. Its figures for a period (presets, the reporting time zone), each number
//! leading to the records behind it (the feeds, filtered to it); its tracked links, with
//! their URL to copy, created and archived here; its details, edited here; archiving it
//! takes it off the lists and keeps it credited. Managers and owners change; everyone reads.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use crm_app::partners::{
    self, CampaignBody, CampaignFields, InfluencerBody, InfluencerFields, LinkBody, LinkFields, PartnerError,
};
use crm_core::access::Role;
use crm_core::link::{GENERATED_LEN, Link, LinkCode};
use crm_core::partners::{Campaign, Influencer, parse_id};
use crm_core::stats::{Dimension, Period};
use crm_core::values::format_ts;
use maud::{Markup, html};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::pages::{field, message, presets, respond_status, url_encode};
use crate::{Console, Refusal, Submitted, Viewer};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Of {
    Influencer,
    Campaign,
}

impl Of {
    fn path(self) -> &'static str {
        match self {
            Of::Influencer => "/dashboard/influencers",
            Of::Campaign => "/dashboard/campaigns",
        }
    }
    fn dimension(self) -> Dimension {
        match self {
            Of::Influencer => Dimension::Influencer,
            Of::Campaign => Dimension::Campaign,
        }
    }
    /// The feeds' filter naming it.
    fn filter(self) -> &'static str {
        match self {
            Of::Influencer => "influencer",
            Of::Campaign => "campaign",
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Of::Influencer => "influencer",
            Of::Campaign => "campaign",
        }
    }
}

/// The entry a page is about.
enum Entry {
    Influencer(Influencer),
    Campaign(Campaign),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Influencer(i) => &i.name,
            Entry::Campaign(c) => &c.name,
        }
    }
    fn archived_at(&self) -> Option<OffsetDateTime> {
        match self {
            Entry::Influencer(i) => i.archived_at,
            Entry::Campaign(c) => c.archived_at,
        }
    }
}

async fn load(console: &Console, of: Of, id: &str) -> Result<Option<Entry>, Refusal> {
    let store = &console.app.store;
    if parse_id(id).is_err() {
        return Ok(None);
    }
    let found = match of {
        Of::Influencer => partners::influencer(store, id).await.map(Entry::Influencer),
        Of::Campaign => partners::campaign(store, id).await.map(Entry::Campaign),
    };
    match found {
        Ok(entry) => Ok(Some(entry)),
        Err(PartnerError::Store(e)) => Err(e.into()),
        Err(_) => Ok(None),
    }
}

/// What the page says above everything: a change done, or why it was refused.
pub enum Notice {
    None,
    Done(String),
    Error(String),
}

/// The figures shown, with the feed (and its filters) each number leads to.
const FIGURES: &[(&str, &str, &str)] = &[
    ("clicks", "Clicks", "/dashboard/clicks?"),
    ("leads", "Leads", "/dashboard/leads?"),
    ("registrations", "Registrations", "/dashboard/events?type=registration&"),
    ("ftds", "FTDs", "/dashboard/events?type=ftd&"),
    ("deposits", "Deposits", "/dashboard/events?type=deposit&"),
    ("revenueConverted", "Revenue", "/dashboard/events?"),
    ("epc", "EPC", ""),
    ("leadRate", "Lead rate", ""),
    ("ftdRate", "FTD rate", ""),
];

fn figures_table(of: Of, id: &str, period: &Period, figures: &Map<String, Value>) -> Markup {
    // The feeds are by UTC day: the drill-down opens the period's last day (or today).
    let today = OffsetDateTime::now_utc().date();
    let day = period.to.min(today);
    html! {
        table {
            caption { "From " (period.from.to_string()) " to " (period.to.to_string()) " (" (period.zone.as_str()) "), last touch" }
            thead { tr { @for (_, label, _) in FIGURES { th scope="col" { (label) } } } }
            tbody { tr {
                @for (name, _, feed) in FIGURES {
                    td.num {
                        @let v = field(figures, name);
                        @if feed.is_empty() || v.is_empty() { (v) }
                        @else { a href={ (feed) (of.filter()) "=" (url_encode(id)) "&day=" (day.to_string()) } { (v) } }
                    }
                }
            } }
        }
        p.hint { "Each number leads to its records of " (day.to_string()) " (UTC); \"The day before\" walks back through the period." }
    }
}

fn link_rows(links: &[Link], base: &str, viewer: &Viewer, here: &str) -> Markup {
    let may_change = viewer.role().may_change();
    html! {
        table {
            caption { "Tracked links (visits redirect to the destination, credited here)" }
            thead { tr {
                th scope="col" { "Link" } th scope="col" { "Destination" } th scope="col" { "Influencer" }
                th scope="col" { "Campaign" } th scope="col" { "Created (UTC)" } @if may_change { th scope="col" { "Actions" } }
            } }
            tbody {
                @if links.is_empty() { tr { td colspan="6" { "No links yet." } } }
                @for l in links {
                    @let url = format!("{base}/l/{}", l.code);
                    @let label = format!("link-{}", l.code);
                    tr {
                        td {
                            label.visually-hidden for=(label) { "Link " (l.code) " to copy" }
                            input id=(label) type="text" readonly value=(url) size="36";
                        }
                        td { (l.destination.as_str()) }
                        td { (l.influencer_id) }
                        td { (l.campaign_id.as_deref().unwrap_or_default()) }
                        td { (format_ts(l.created_at)) }
                        @if may_change {
                            td {
                                form.inline method="post" action=(here) {
                                    input type="hidden" name="csrf" value=(viewer.session.csrf);
                                    input type="hidden" name="do" value="unlink";
                                    input type="hidden" name="code" value=(l.code);
                                    button.secondary type="submit" { "Archive" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn render(
    console: &Console,
    viewer: &Viewer,
    headers: &HeaderMap,
    of: Of,
    id: &str,
    q: &BTreeMap<String, String>,
    notice: Notice,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let app = &console.app;
    let Some(entry) = load(console, of, id).await? else {
        return Ok(message(StatusCode::NOT_FOUND, "Not found", "There is no such entry."));
    };
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let zone = app.config.reporting.zone.clone();
    let now = OffsetDateTime::now_utc();
    let (period, notice) = match Period::parse(get("from"), get("to"), zone.clone(), now) {
        Ok(p) => (p, notice),
        Err((field, e)) => (
            Period::parse(None, None, zone, now).map_err(|_| Refusal::Unavailable)?,
            Notice::Error(format!("{field}: {}", e.message)),
        ),
    };
    let currency = &app.config.reporting.currency;
    let figures = partners::stats(&app.store, currency, of.dimension(), id, period.clone()).await?;
    let filter = match &entry {
        Entry::Influencer(i) => partners::LinkFilter {
            influencer_id: Some(i.influencer_id.clone()),
            ..Default::default()
        },
        Entry::Campaign(c) => partners::LinkFilter {
            campaign_id: Some(c.campaign_id.clone()),
            ..Default::default()
        },
    };
    let links: Vec<Link> = partners::links(&app.store, &filter).await?;
    let base = crm_http::public_base(app, headers);
    let here = format!("{}/{}", of.path(), url_encode(id));
    let may_change = viewer.role().may_change();
    let csrf = &viewer.session.csrf;
    // What the forms choose from: the campaigns a link may name, or the influencers a
    // campaign may be credited to.
    let (campaigns, influencers) = if may_change {
        match of {
            Of::Influencer => (partners::campaigns(&app.store).await?, Vec::new()),
            Of::Campaign => (Vec::new(), partners::influencers(&app.store).await?),
        }
    } else {
        (Vec::new(), Vec::new())
    };
    let today = now.date();
    let body = html! {
        @match &notice {
            Notice::Done(m) => { p.notice role="status" { (m) } }
            Notice::Error(m) => { p.error role="alert" { (m) } }
            Notice::None => {}
        }
        @if let Some(at) = entry.archived_at() { p { span.tag { "archived" } " since " (format_ts(at)) " (UTC): off the lists, still credited." } }
        dl.facts {
            dt { "Id" } dd { (id) }
            @match &entry {
                Entry::Influencer(i) => {
                    dt { "Handle" } dd { (i.handle.as_deref().unwrap_or_default()) }
                    dt { "Channel" } dd { (i.channel.as_deref().unwrap_or_default()) }
                    dt { "Deal" } dd { (i.payout.as_deref().unwrap_or_default()) }
                }
                Entry::Campaign(c) => {
                    dt { "Brand" } dd { (c.brand.as_deref().unwrap_or_default()) }
                    dt { "Influencer" } dd {
                        @if let Some(i) = &c.influencer_id { a href={ "/dashboard/influencers/" (url_encode(i)) } { (i) } }
                    }
                    dt { "Source" } dd { (c.source.as_deref().unwrap_or_default()) }
                }
            }
        }
        h2 { "Figures" }
        form.filters method="get" action=(here) {
            label for="from" { "From" }
            input #from type="date" name="from" value=(period.from.to_string());
            label for="to" { "To" }
            input #to type="date" name="to" value=(period.to.to_string());
            button type="submit" { "Show" }
        }
        p.presets { "Period: " @for (label, from, to) in presets(today) {
            a href={ (here) "?from=" (from.to_string()) "&to=" (to.to_string()) } { (label) } " "
        } }
        (figures_table(of, id, &period, &figures))
        h2 { "Tracked links" }
        (link_rows(&links, &base, viewer, &here))
        @if may_change {
            form.stacked method="post" action=(here) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="do" value="link";
                label for="destination" { "New link's destination (the operator's URL; {clickid}, {sub1} … are filled in)" }
                input #destination type="url" name="destination" required maxlength="2048" placeholder="https://operator.example/register?btag={clickid}";
                @match &entry {
                    Entry::Influencer(_) => {
                        label for="link-campaign" { "Campaign" }
                        select #link-campaign name="campaignId" {
                            option value="" { "None" }
                            @for c in campaigns.iter().filter(|c| c.archived_at.is_none()) { option value=(c.campaign_id) { (c.name) } }
                        }
                    }
                    Entry::Campaign(c) => {
                        label for="link-influencer" { "Influencer" }
                        select #link-influencer name="influencerId" required {
                            @for i in influencers.iter().filter(|i| i.archived_at.is_none()) {
                                option value=(i.influencer_id) selected[c.influencer_id.as_deref() == Some(i.influencer_id.as_str())] { (i.name) }
                            }
                        }
                    }
                }
                label for="link-brand" { "Brand (optional: the campaign's)" }
                input #link-brand name="brand" maxlength="64";
                button type="submit" { "Create link" }
            }
            h2 { "Edit" }
            form.stacked method="post" action=(here) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="do" value="save";
                label for="name" { "Name" }
                input #name name="name" required maxlength="200" value=(entry.name());
                @match &entry {
                    Entry::Influencer(i) => {
                        label for="handle" { "Handle" }
                        input #handle name="handle" maxlength="200" value=[i.handle.as_deref()];
                        label for="channel" { "Channel" }
                        input #channel name="channel" maxlength="200" value=[i.channel.as_deref()];
                        label for="payout" { "Deal" }
                        input #payout name="payout" maxlength="200" value=[i.payout.as_deref()] placeholder="CPA 50 USD";
                    }
                    Entry::Campaign(c) => {
                        label for="brand" { "Brand" }
                        input #brand name="brand" maxlength="64" value=[c.brand.as_deref()];
                        label for="influencerId" { "Influencer" }
                        select #influencerId name="influencerId" {
                            option value="" { "None" }
                            @for i in &influencers {
                                option value=(i.influencer_id) selected[c.influencer_id.as_deref() == Some(i.influencer_id.as_str())] { (i.name) }
                            }
                        }
                        label for="source" { "Source" }
                        input #source name="source" maxlength="200" value=[c.source.as_deref()];
                    }
                }
                button type="submit" { "Save" }
            }
            form.inline method="post" action=(here) {
                input type="hidden" name="csrf" value=(csrf);
                @if entry.archived_at().is_some() {
                    input type="hidden" name="do" value="restore";
                    button type="submit" { "Bring back to the lists" }
                } @else {
                    input type="hidden" name="do" value="archive";
                    button.secondary type="submit" { "Archive this " (of.noun()) }
                }
            }
        }
        p { a href=(of.path()) { "Back to the list" } }
    };
    let title = format!("{} ({})", entry.name(), of.noun());
    Ok(respond_status(viewer, status, &title, of.path(), body))
}

/// An influencer's or a campaign's page (`of` says which: the router names it).
pub async fn show(
    of: Of,
    State(console): State<Console>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    let ok = StatusCode::OK;
    render(&console, &viewer, &headers, of, &id, &q, Notice::None, ok).await
}

/// What a form asked, done: the notice to show, or why not (a refused field, a taken name).
async fn act(console: &Console, of: Of, id: &str, s: &Submitted) -> Result<Result<String, String>, Refusal> {
    let store = &console.app.store;
    let now = OffsetDateTime::now_utc();
    let Some(entry) = load(console, of, id).await? else {
        return Ok(Err("There is no such entry.".into()));
    };
    let outcome: Result<String, PartnerError> = match (s.field("do"), &entry) {
        ("archive" | "restore", _) => {
            let archived = s.field("do") == "archive";
            let done = match of {
                Of::Influencer => partners::archive_influencer(store, id, archived, now).await.map(|_| ()),
                Of::Campaign => partners::archive_campaign(store, id, archived, now).await.map(|_| ()),
            };
            done.map(|()| {
                if archived {
                    "Archived: off the lists, still credited."
                } else {
                    "Back on the lists."
                }
                .into()
            })
        }
        ("save", Entry::Influencer(i)) => match s.read::<InfluencerBody, InfluencerFields>() {
            Ok(f) => {
                let edited = f.influencer(i.influencer_id.clone(), now);
                partners::edit_influencer(store, edited).await.map(|_| "Saved.".into())
            }
            Err(message) => return Ok(Err(message)),
        },
        ("save", Entry::Campaign(c)) => match s.read::<CampaignBody, CampaignFields>() {
            Ok(f) => {
                let edited = f.campaign(c.campaign_id.clone(), now);
                partners::edit_campaign(store, edited).await.map(|_| "Saved.".into())
            }
            Err(message) => return Ok(Err(message)),
        },
        ("link", _) => {
            // The entry's page credits the entry itself.
            let mut form: LinkBody = match s.sent() {
                Ok(f) => f,
                Err(message) => return Ok(Err(message)),
            };
            match &entry {
                Entry::Influencer(i) => form.influencer_id = Some(i.influencer_id.clone()),
                Entry::Campaign(c) => form.campaign_id = Some(c.campaign_id.clone()),
            }
            form.code = None;
            let fields = match LinkFields::try_from(form) {
                Ok(f) => f,
                Err(e) => return Ok(Err(e.to_string())),
            };
            let placeholder = LinkCode::generate([0; GENERATED_LEN]);
            match fields.link(store, placeholder, now).await {
                Ok(link) => partners::create_link(store, link, false)
                    .await
                    .map(|l| format!("Link {} created: copy it from the table.", l.code)),
                Err(e) => Err(e),
            }
        }
        ("unlink", _) => {
            let Ok(code) = LinkCode::parse(s.field("code")) else {
                return Ok(Err("There is no such link.".into()));
            };
            partners::archive_link(store, &code, now)
                .await
                .map(|_| format!("Link {code} archived: it still redirects, off the list."))
        }
        _ => return Ok(Err("Nothing to do.".into())),
    };
    match outcome {
        Ok(done) => Ok(Ok(done)),
        Err(PartnerError::Store(e)) => Err(e.into()),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// A form of an influencer's or a campaign's page.
pub async fn change(
    of: Of,
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    s: Submitted,
) -> Result<Response, Refusal> {
    s.viewer.require(Role::may_change)?;
    let q = BTreeMap::new();
    match act(&console, of, &id, &s).await? {
        Ok(done) => {
            let action = format!("{}.{}", of.noun(), s.field("do"));
            s.viewer.audit(&console, &action, &id).await;
            let ok = StatusCode::OK;
            render(&console, &s.viewer, &headers, of, &id, &q, Notice::Done(done), ok).await
        }
        Err(why) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render(&console, &s.viewer, &headers, of, &id, &q, Notice::Error(why), status).await
        }
    }
}
