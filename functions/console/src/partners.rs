//! `/dashboard/influencers` and `/dashboard/campaigns`: who and what the traffic is credited
//! to, with the last 30 days' figures (clicks, leads, FTDs, deposits, revenue, EPC), and
//! forms to add them (managers and owners). Each has a page of its own: its figures for any
//! period, each number leading to the records behind it; its tracked links (create, copy,
//! archive); edit; archive (off the lists, still credited) and bring back.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use crm_app::partners::{self, CampaignBody, CampaignFields, InfluencerBody, InfluencerFields, PartnerError};
use crm_core::stats::{Dimension, Period, Totals};
use maud::{Markup, html};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::pages::{field, respond_status, url_encode};
use crate::{Console, Refusal, Submitted, Viewer};

/// The figures the lists show, by metric name, in this order.
const FIGURES: &[(&str, &str)] = &[
    ("clicks", "Clicks"),
    ("leads", "Leads"),
    ("ftds", "FTDs"),
    ("deposits", "Deposits"),
    ("revenueConverted", "Revenue"),
    ("epc", "EPC"),
];

/// Each value of `by` with its figures over the last 30 days (reporting zone).
async fn figures_by(console: &Console, by: Dimension) -> Result<BTreeMap<String, Map<String, Value>>, Refusal> {
    let app = &console.app;
    let period = Period::parse(None, None, app.config.reporting.zone.clone(), OffsetDateTime::now_utc())
        .map_err(|_| Refusal::Unavailable)?;
    let fx = crm_app::reports::rates(&app.store, &app.config.reporting.currency).await?;
    let rows: Vec<(String, Totals)> = partners::stats_by(&app.store, by, period, None).await?;
    Ok(rows
        .into_iter()
        .map(|(v, t)| (v, crm_app::reports::figures(&t, &fx)))
        .collect())
}

/// A row's figures; nothing counted yet is zero (and no EPC).
fn figure_cells(figures: Option<&Map<String, Value>>) -> Markup {
    let shown = |name: &str| match figures {
        Some(f) => field(f, name),
        None if name == "epc" => String::new(),
        None if name == "revenueConverted" => "0.00".into(),
        None => "0".into(),
    };
    html! { @for (name, _) in FIGURES { td.num { (shown(name)) } } }
}

fn figure_headings() -> Markup {
    html! { @for (_, label) in FIGURES { th scope="col" { (label) } } }
}

fn error_note(error: Option<&str>) -> Markup {
    html! { @if let Some(e) = error { p.error role="alert" { (e) } } }
}

/// The link that shows or hides archived entries, with how many there are.
fn archived_toggle(path: &str, archived: usize, showing: bool) -> Markup {
    html! {
        @if showing { p { a href=(path) { "Hide archived" } } }
        @else if archived > 0 { p { a href={ (path) "?archived=1" } { "Show archived (" (archived) ")" } } }
    }
}

fn showing_archived(q: &BTreeMap<String, String>) -> bool {
    q.get("archived").is_some_and(|v| v == "1")
}

async fn influencers_page(
    console: &Console,
    viewer: &Viewer,
    error: Option<&str>,
    status: StatusCode,
    show_archived: bool,
) -> Result<Response, Refusal> {
    let mut influencers = partners::influencers(&console.app.store).await?;
    let archived = influencers.iter().filter(|i| i.archived_at.is_some()).count();
    influencers.retain(|i| show_archived || i.archived_at.is_none());
    let figures = figures_by(console, Dimension::Influencer).await?;
    let body = html! {
        (error_note(error))
        table {
            caption { "Influencers, with the last 30 days" }
            thead { tr { th scope="col" { "Id" } th scope="col" { "Name" } th scope="col" { "Handle" } th scope="col" { "Channel" } (figure_headings()) } }
            tbody {
                @if influencers.is_empty() { tr { td colspan=(FIGURES.len() + 4) { "No influencers yet." } } }
                @for i in &influencers {
                    tr {
                        th scope="row" {
                            a href={ "/dashboard/influencers/" (url_encode(&i.influencer_id)) } { (i.influencer_id) }
                            @if i.auto_created { " " span.tag { "from a click" } }
                            @if i.archived_at.is_some() { " " span.tag { "archived" } }
                        }
                        td { (i.name) }
                        td { (i.handle.as_deref().unwrap_or_default()) }
                        td { (i.channel.as_deref().unwrap_or_default()) }
                        (figure_cells(figures.get(&i.influencer_id)))
                    }
                }
            }
        }
        (archived_toggle("/dashboard/influencers", archived, show_archived))
        @if viewer.role().may_change() {
            h2 { "Add an influencer" }
            form.stacked method="post" action="/dashboard/influencers" {
                input type="hidden" name="csrf" value=(viewer.session.csrf);
                label for="inf-name" { "Name" }
                input #inf-name name="name" required maxlength="200";
                label for="inf-id" { "Id (optional: the value your links and Redtrack carry; made up if empty)" }
                input #inf-id name="influencerId" maxlength="64";
                label for="inf-handle" { "Handle" }
                input #inf-handle name="handle" maxlength="200";
                label for="inf-channel" { "Channel" }
                input #inf-channel name="channel" maxlength="200" placeholder="YouTube, Instagram, TikTok …";
                button type="submit" { "Add influencer" }
            }
        }
    };
    Ok(respond_status(
        viewer,
        status,
        "Influencers",
        "/dashboard/influencers",
        body,
    ))
}

pub async fn influencers(
    State(console): State<Console>,
    viewer: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    influencers_page(&console, &viewer, None, StatusCode::OK, showing_archived(&q)).await
}

pub async fn add_influencer(State(console): State<Console>, s: Submitted) -> Result<Response, Refusal> {
    s.viewer.require(crm_core::access::Role::may_change)?;
    let now = OffsetDateTime::now_utc();
    let parsed = s.read::<InfluencerBody, InfluencerFields>().map(|f| {
        let id = f.id.clone().unwrap_or_default();
        f.influencer(id, now)
    });
    let influencer = match parsed {
        Ok(i) => i,
        Err(message) => {
            return influencers_page(&console, &s.viewer, Some(&message), StatusCode::BAD_REQUEST, false).await;
        }
    };
    match partners::create_influencer(&console.app.store, influencer).await {
        Ok(i) => {
            s.viewer.audit(&console, "influencer.create", &i.influencer_id).await;
            Ok(Redirect::to("/dashboard/influencers").into_response())
        }
        Err(PartnerError::Store(e)) => Err(e.into()),
        Err(e) => influencers_page(&console, &s.viewer, Some(&e.to_string()), StatusCode::CONFLICT, false).await,
    }
}

async fn campaigns_page(
    console: &Console,
    viewer: &Viewer,
    error: Option<&str>,
    status: StatusCode,
    show_archived: bool,
) -> Result<Response, Refusal> {
    let mut campaigns = partners::campaigns(&console.app.store).await?;
    let archived = campaigns.iter().filter(|c| c.archived_at.is_some()).count();
    campaigns.retain(|c| show_archived || c.archived_at.is_none());
    let influencers = partners::influencers(&console.app.store).await?;
    let figures = figures_by(console, Dimension::Campaign).await?;
    let body = html! {
        (error_note(error))
        table {
            caption { "Campaigns, with the last 30 days" }
            thead { tr { th scope="col" { "Id" } th scope="col" { "Name" } th scope="col" { "Brand" } th scope="col" { "Influencer" } (figure_headings()) } }
            tbody {
                @if campaigns.is_empty() { tr { td colspan=(FIGURES.len() + 4) { "No campaigns yet." } } }
                @for c in &campaigns {
                    tr {
                        th scope="row" {
                            a href={ "/dashboard/campaigns/" (url_encode(&c.campaign_id)) } { (c.campaign_id) }
                            @if c.auto_created { " " span.tag { "from a click" } }
                            @if c.archived_at.is_some() { " " span.tag { "archived" } }
                        }
                        td { (c.name) }
                        td { (c.brand.as_deref().unwrap_or_default()) }
                        td { (c.influencer_id.as_deref().unwrap_or_default()) }
                        (figure_cells(figures.get(&c.campaign_id)))
                    }
                }
            }
        }
        (archived_toggle("/dashboard/campaigns", archived, show_archived))
        @if viewer.role().may_change() {
            h2 { "Add a campaign" }
            form.stacked method="post" action="/dashboard/campaigns" {
                input type="hidden" name="csrf" value=(viewer.session.csrf);
                label for="cmp-name" { "Name (what clicks' campaign carries, without case)" }
                input #cmp-name name="name" required maxlength="200";
                label for="cmp-brand" { "Brand" }
                input #cmp-brand name="brand" maxlength="64" placeholder="rushbet";
                label for="cmp-influencer" { "Influencer" }
                select #cmp-influencer name="influencerId" {
                    option value="" { "None" }
                    @for i in &influencers { option value=(i.influencer_id) { (i.name) " (" (i.influencer_id) ")" } }
                }
                label for="cmp-source" { "Source" }
                input #cmp-source name="source" maxlength="200" placeholder="youtube";
                button type="submit" { "Add campaign" }
            }
        }
    };
    Ok(respond_status(
        viewer,
        status,
        "Campaigns",
        "/dashboard/campaigns",
        body,
    ))
}

pub async fn campaigns(
    State(console): State<Console>,
    viewer: Viewer,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, Refusal> {
    campaigns_page(&console, &viewer, None, StatusCode::OK, showing_archived(&q)).await
}

pub async fn add_campaign(State(console): State<Console>, s: Submitted) -> Result<Response, Refusal> {
    s.viewer.require(crm_core::access::Role::may_change)?;
    let now = OffsetDateTime::now_utc();
    let parsed = s
        .read::<CampaignBody, CampaignFields>()
        .map(|f| f.campaign(String::new(), now));
    let campaign = match parsed {
        Ok(c) => c,
        Err(message) => {
            return campaigns_page(&console, &s.viewer, Some(&message), StatusCode::BAD_REQUEST, false).await;
        }
    };
    match partners::create_campaign(&console.app.store, campaign, None).await {
        Ok(c) => {
            s.viewer.audit(&console, "campaign.create", &c.campaign_id).await;
            Ok(Redirect::to("/dashboard/campaigns").into_response())
        }
        Err(PartnerError::Store(e)) => Err(e.into()),
        Err(e) => campaigns_page(&console, &s.viewer, Some(&e.to_string()), StatusCode::CONFLICT, false).await,
    }
}
