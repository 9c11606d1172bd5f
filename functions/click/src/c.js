/* The CRM's landing-page tag. <script src="https://<crm>/c.js" data-key="<landing key>" async></script>
 * Reports one click per visit, fills click-id form fields, hands the click id to the
 * operator's links, and sends lead forms marked data-crm="lead". docs/integrations.md#the-landing-page-tag */
(function (w, d) {
  var me = d.currentScript;
  if (!me || w.crmTagLoaded) return;
  w.crmTagLoaded = true;
  var api = me.src.replace(/\/c\.js([?#].*)?$/, '');
  var key = me.getAttribute('data-key') || '';
  var q = new URLSearchParams(location.search);
  var store = {
    get: function (k) { try { return sessionStorage.getItem(k); } catch (e) { return null; } },
    set: function (k, v) { try { sessionStorage.setItem(k, v); } catch (e) { /* private mode */ } }
  };
  var FIELDS = ['clickId', 'clickid', 'click_id', 'rtkcid'];
  var PASS = /^(sub([1-9]|1[0-9]|20)|utm_[a-z]+|rt_[a-z]+|cmpid|ref_id|fbclid|gclid|ttclid|msclkid)$/;
  var OURS = /^v[0-9a-f]{32}$/;
  var settings = null, clickId = null, consented = false;

  function cookie(name) {
    var m = d.cookie.match(new RegExp('(?:^|; )' + name.replace(/-/g, '\\-') + '=([^;]*)'));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function newVisit() {
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return 'v' + Array.prototype.map.call(a, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  }
  // A tracker's click id as the page sees it now; null when there is none (yet).
  function trackerId() {
    return q.get('rtkcid') || q.get('clickid') || q.get('rtkclickid') || q.get('cid') || q.get('clickId') ||
      cookie('rtkclickid-store') || store.get('rtkclickid') || store.get('crm.click') ||
      (typeof w.rtkClickID === 'string' && w.rtkClickID) || null;
  }
  // The click id of this visit: the tracker's, else a tracked link's visit id (sub10), else
  // this browser session's own visit id (a reload is the same visit).
  function settle(waited) {
    var id = trackerId();
    if (!id && waited < 3000) return setTimeout(function () { settle(waited + 100); }, 100);
    var sub10 = q.get('sub10');
    id = id || (sub10 && OURS.test(sub10) ? sub10 : store.get('crm.visit') || newVisit());
    if (OURS.test(id)) store.set('crm.visit', id);
    store.set('crm.click', id);
    clickId = id;
    report();
    fill();
  }
  function report() {
    if (store.get('crm.sent') === clickId) return;
    var body = new URLSearchParams();
    body.set('clickId', clickId);
    q.forEach(function (v, k) { if (PASS.test(k)) body.set(k, v); });
    if (!body.has('cmpid') && q.get('rtkcmpid')) body.set('cmpid', q.get('rtkcmpid'));
    if (d.referrer) body.set('referrer', d.referrer.slice(0, 2048));
    body.set('landingPage', location.href.slice(0, 2048));
    var url = api + '/api/ingest/click?token=' + encodeURIComponent(key);
    var queued = false;
    try { queued = navigator.sendBeacon(url, body); } catch (e) { /* fall back */ }
    if (queued) return store.set('crm.sent', clickId);
    fetch(url, { method: 'POST', body: body, keepalive: true, credentials: 'omit' })
      .then(function (r) { if (r.ok) store.set('crm.sent', clickId); }, function () { /* next page view retries */ });
  }
  // The operator's links (settings.decorateDomains) carry the click id; a tracker's own
  // /click and /preclick links never do.
  function decorate(href) {
    if (!clickId || !settings) return href;
    var u;
    try { u = new URL(href, location.href); } catch (e) { return href; }
    var host = u.hostname.toLowerCase();
    var ours = settings.decorateDomains.some(function (dom) { return host === dom || host.slice(-dom.length - 1) === '.' + dom; });
    if (!ours || /^\/(pre)?click(\/|$)/.test(u.pathname) || !/^https?:$/.test(u.protocol)) return href;
    u.searchParams.set(settings.decorateParam, clickId);
    return u.toString();
  }
  function fill() {
    FIELDS.forEach(function (name) {
      d.querySelectorAll('input[name="' + name + '"]').forEach(function (el) { if (!el.value) el.value = clickId; });
    });
    d.querySelectorAll('a[href]').forEach(function (a) {
      var next = decorate(a.href);
      if (next !== a.href) a.href = next;
    });
  }
  // A form marked data-crm="lead" is sent as a lead (its fields, and the click id), then the
  // visitor goes to its data-next (decorated) whatever the answer: the CRM never blocks them.
  function lead(e) {
    var form = e.target;
    if (!form || !form.matches || !form.matches('form[data-crm="lead"]')) return;
    e.preventDefault();
    if (form.crmSending) return;
    form.crmSending = true;
    if (clickId) fill();
    var body = new URLSearchParams(new FormData(form));
    if (clickId && !FIELDS.some(function (f) { return body.get(f); })) body.set('clickId', clickId);
    var finished = false;
    var done = function (ok) {
      if (finished) return;
      finished = true;
      form.crmSending = false;
      form.dispatchEvent(new CustomEvent('crm:lead', { bubbles: true, detail: { ok: ok } }));
      var next = form.getAttribute('data-next');
      if (next) location.href = decorate(next);
    };
    // The request outlives the page (keepalive): the visitor waits 3 s at most.
    setTimeout(function () { done(false); }, 3000);
    fetch(api + '/api/ingest/lead?token=' + encodeURIComponent(key), {
      method: 'POST', body: body, keepalive: true, credentials: 'omit'
    }).then(function (r) { done(r.ok); }, function () { done(false); });
  }
  function start() {
    if (consented || !settings) return;
    if (settings.waitForConsent && w.crmConsent !== true) return;
    consented = true;
    settle(0);
  }
  d.addEventListener('submit', lead);
  d.addEventListener('click', function (e) {
    var a = e.target && e.target.closest && e.target.closest('a[href]');
    if (a) { var next = decorate(a.href); if (next !== a.href) a.href = next; }
  }, true);
  // window.crmConsent = true (before or after this tag loads) is the page saying the visitor agreed.
  var given = w.crmConsent;
  try {
    Object.defineProperty(w, 'crmConsent', {
      configurable: true,
      get: function () { return given; },
      set: function (v) { given = v; start(); }
    });
  } catch (e) { /* already defined by the page: read at start */ }
  fetch(api + '/c.json?token=' + encodeURIComponent(key), { credentials: 'omit' })
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (s) { if (s) { settings = s; start(); } }, function () { /* nothing is sent without settings */ });
})(window, document);
