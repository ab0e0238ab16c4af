// The demo page plays the EHR, as the CDS Hooks Sandbox does: it reads the services' discovery, fills each
// prefetch template from the "EHR's" FHIR server, calls order-select while an order is being built and
// order-sign on "Sign", renders the cards, applies a taken suggestion's actions to the draft orders and the
// system actions' ratings, and sends CDS Hooks feedback when a suggestion is taken or a card overridden.
import { renderMarkdown } from "./markdown.js";

const state = {
  config: null,
  services: {},      // hook -> service from discovery
  patients: [],
  patient: null,
  prefetch: {},      // hook -> prefetch filled for the current patient
  drafts: [],        // draft ServiceRequests
  nextOrder: 1,
};

const $ = (id) => document.getElementById(id);

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && (body.message || (body.issue && body.issue[0] && body.issue[0].diagnostics));
    throw new Error(message || `${url} answered HTTP ${response.status}`);
  }
  return body;
}

async function postJSON(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => null);
  return { status: response.status, body: answer };
}

function option(value, text) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = text;
  return element;
}

async function start() {
  try {
    const [config, discovery, patients] = await Promise.all([
      getJSON("/demo/api/config"),
      getJSON("/cds-services"),
      getJSON("/demo/api/patients"),
    ]);
    state.config = config;
    for (const service of discovery.services) state.services[service.hook] = service;
    state.patients = patients.patients;
  } catch (error) {
    setStatus(`The demo could not start: ${error.message}`, true);
    return;
  }
  const patientSelect = $("patient-select");
  patientSelect.replaceChildren(option("", "Choose a patient…"));
  for (const patient of state.patients) {
    const sex = patient.gender ? patient.gender[0].toUpperCase() : "?";
    patientSelect.append(option(patient.id, `${patient.name} (${patient.age ?? "?"} ${sex})`));
  }
  patientSelect.disabled = false;
  $("order-select").replaceChildren(
    ...state.config.orders.map((order) => option(order.procedure, `${order.display} (${order.code})`)),
  );
  for (const reason of state.config.reasons) {
    $("reason-select").append(option(reason.id, reason.coding[0].display));
  }
  patientSelect.addEventListener("change", () => choosePatient(patientSelect.value));
  $("order-form").addEventListener("submit", (event) => {
    event.preventDefault();
    addOrder();
  });
  $("sign-orders").addEventListener("click", signOrders);
  const wanted = new URLSearchParams(location.search).get("patient");
  if (wanted) {
    patientSelect.value = wanted;
    await choosePatient(wanted);
  }
}

async function choosePatient(patientId) {
  state.patient = state.patients.find((patient) => patient.id === patientId) || null;
  state.drafts = [];
  state.prefetch = {};
  $("cards").replaceChildren();
  renderDrafts();
  $("patient-vignette").textContent = state.patient ? state.patient.vignette : "";
  $("add-order").disabled = !state.patient;
  if (!state.patient) return;
  setStatus("Reading the patient's record…");
  try {
    for (const [hook, service] of Object.entries(state.services)) {
      state.prefetch[hook] = await fillPrefetch(service, patientId);
    }
    setStatus(`Record read for ${state.patient.name}. Add an order.`);
  } catch (error) {
    setStatus(`The record could not be read: ${error.message}`, true);
  }
}

// Each prefetch template with its tokens filled, read from the FHIR server (or left to the service to
// fetch, when the config says the page prefetches only some keys).
async function fillPrefetch(service, patientId) {
  const prefetch = {};
  const keys = state.config.prefetchKeys;
  const withheld = (state.patient && state.patient.prefetchWithheld) || [];
  for (const [key, template] of Object.entries(service.prefetch || {})) {
    if (keys && !keys.includes(key)) continue;
    if (withheld.includes(key)) continue; // this EHR does not share that data for the patient
    const query = template
      .replaceAll("{{context.patientId}}", encodeURIComponent(patientId))
      .replaceAll("{{context.userId}}", encodeURIComponent(state.config.practitioner))
      .replaceAll("{{userPractitionerId}}", "demo-clinician");
    prefetch[key] = await getJSON(`${state.config.fhirBase}/${query}`);
  }
  return prefetch;
}

function hookRequest(hook, extraContext) {
  const body = {
    hook,
    hookInstance: uuid(),
    context: {
      userId: state.config.practitioner,
      patientId: state.patient.id,
      draftOrders: { resourceType: "Bundle", type: "collection", entry: state.drafts.map((resource) => ({ resource })) },
      ...extraContext,
    },
    prefetch: state.prefetch[hook] || {},
  };
  if (state.config.fhirServer) {
    // The compose demo: what was not prefetched the service fetches from the FHIR server itself.
    body.fhirServer = state.config.fhirServer;
    body.fhirAuthorization = {
      access_token: "demo-access-token",
      token_type: "Bearer",
      expires_in: 300,
      scope: "patient/*.read",
      subject: "lbp-imaging-cds",
    };
  }
  return body;
}

async function addOrder() {
  const params = new URLSearchParams({
    patient: state.patient.id,
    procedure: $("order-select").value,
    n: String(state.nextOrder),
  });
  if ($("reason-select").value) params.set("reason", $("reason-select").value);
  let order;
  try {
    order = await getJSON(`/demo/api/draft-order?${params}`);
  } catch (error) {
    setStatus(`The order could not be built: ${error.message}`, true);
    return;
  }
  state.nextOrder += 1;
  state.drafts.push(order);
  renderDrafts();
  await callHook("order-select", { selections: [`ServiceRequest/${order.id}`] });
}

async function signOrders() {
  await callHook("order-sign", {});
}

async function callHook(hook, extraContext) {
  const service = state.services[hook];
  if (!service || !state.patient) return;
  setStatus(`Calling ${hook}…`);
  const started = performance.now();
  const { status, body } = await postJSON(`/cds-services/${service.id}`, hookRequest(hook, extraContext));
  const elapsed = Math.round(performance.now() - started);
  if (status !== 200 || !body) {
    setStatus(`${hook} answered HTTP ${status}: ${(body && body.message) || "no answer"}`, true);
    return;
  }
  applySystemActions(body.systemActions || []);
  renderCards(service, body.cards || []);
  const count = (body.cards || []).length;
  setStatus(
    count === 0
      ? `${hook}: no card (${elapsed} ms). Orders that are not lumbar spine imaging get none.`
      : `${hook}: ${count} card${count === 1 ? "" : "s"} (${elapsed} ms).`,
  );
}

// The EHR applies system actions without asking: here, the PAMA rating recorded on the order.
function applySystemActions(actions) {
  for (const action of actions) {
    if (action.type === "update" && action.resource) replaceDraft(action.resource);
  }
  renderDrafts();
}

function replaceDraft(resource) {
  const index = state.drafts.findIndex((draft) => draft.id === resource.id);
  if (index !== -1) state.drafts[index] = resource;
}

function pamaRating(order) {
  for (const extension of order.extension || []) {
    if (extension.url === "http://fhir.org/argonaut/Extension/pama-rating") {
      return extension.valueCodeableConcept.coding[0].code;
    }
  }
  return null;
}

function renderDrafts() {
  const list = $("draft-orders");
  list.replaceChildren();
  if (state.drafts.length === 0) {
    const empty = document.createElement("li");
    empty.className = "muted";
    empty.textContent = "No draft orders.";
    list.append(empty);
  }
  for (const order of state.drafts) {
    const item = document.createElement("li");
    item.dataset.id = order.id;
    item.textContent = (order.code && (order.code.text || order.code.coding[0].display)) || "Order";
    const rating = pamaRating(order);
    if (rating) {
      const badge = document.createElement("span");
      badge.className = "rating";
      badge.textContent = `PAMA rating: ${rating}`;
      item.append(" ", badge);
    }
    list.append(item);
  }
  $("sign-orders").disabled = state.drafts.length === 0;
}

function applyActions(actions) {
  for (const action of actions || []) {
    if (action.type === "delete") {
      const ids = [].concat(action.resourceId || []);
      state.drafts = state.drafts.filter((draft) => !ids.includes(`${draft.resourceType}/${draft.id}`));
    } else if (action.type === "create" && action.resource) {
      const resource = { ...action.resource, id: action.resource.id || `draft-${state.nextOrder++}` };
      state.drafts.push(resource);
    } else if (action.type === "update" && action.resource) {
      replaceDraft(action.resource);
    }
  }
  renderDrafts();
}

async function sendFeedback(service, item) {
  const { status, body } = await postJSON(`/cds-services/${service.id}/feedback`, {
    feedback: [{ ...item, outcomeTimestamp: new Date().toISOString() }],
  });
  if (status !== 200) throw new Error((body && body.message) || `feedback answered HTTP ${status}`);
}

function renderCards(service, cards) {
  const container = $("cards");
  container.replaceChildren();
  for (const card of cards) container.append(renderCard(service, card));
}

function renderCard(service, card) {
  const facts = (card.extension && card.extension["lbp-imaging-cds"]) || {};
  const element = document.createElement("article");
  element.className = `card ${card.indicator}`;
  element.dataset.indicator = card.indicator;
  if (facts.order) element.dataset.order = facts.order;
  if (facts.assessmentId) element.dataset.assessment = facts.assessmentId;
  element.setAttribute("aria-label", `${card.indicator} card: ${card.summary}`);

  const indicator = document.createElement("div");
  indicator.className = "indicator";
  indicator.textContent = card.indicator;
  const summary = document.createElement("h3");
  summary.className = "summary";
  summary.textContent = card.summary;
  element.append(indicator, summary);

  if (card.detail) {
    const detail = document.createElement("div");
    detail.className = "detail";
    detail.append(renderMarkdown(card.detail));
    element.append(detail);
  }
  if (card.source) {
    const source = document.createElement("p");
    source.className = "source";
    source.append("Source: ");
    if (card.source.url && /^https?:\/\//i.test(card.source.url)) {
      const anchor = document.createElement("a");
      anchor.href = card.source.url;
      anchor.target = "_blank";
      anchor.rel = "noopener noreferrer";
      anchor.textContent = card.source.label;
      source.append(anchor);
    } else {
      source.append(card.source.label);
    }
    element.append(source);
  }
  if (card.links && card.links.length) {
    const links = document.createElement("ul");
    links.className = "links";
    for (const link of card.links) {
      if (!/^https?:\/\//i.test(link.url)) continue;
      const item = document.createElement("li");
      const anchor = document.createElement("a");
      anchor.href = link.url;
      anchor.target = "_blank";
      anchor.rel = "noopener noreferrer";
      anchor.textContent = link.label;
      item.append(anchor);
      links.append(item);
    }
    element.append(links);
  }

  const actions = document.createElement("div");
  actions.className = "actions";
  const outcome = document.createElement("p");
  outcome.className = "outcome";
  outcome.setAttribute("role", "status");
  const controls = [];
  const settle = (text) => {
    for (const control of controls) control.disabled = true;
    outcome.textContent = text;
  };

  for (const suggestion of card.suggestions || []) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = suggestion.isRecommended ? "suggestion" : "suggestion secondary";
    button.dataset.suggestion = suggestion.uuid || "";
    button.textContent = suggestion.label;
    button.addEventListener("click", async () => {
      applyActions(suggestion.actions);
      try {
        if (card.uuid && suggestion.uuid) {
          await sendFeedback(service, {
            card: card.uuid,
            outcome: "accepted",
            acceptedSuggestions: [{ id: suggestion.uuid }],
          });
        }
        settle(`Suggestion taken: ${suggestion.label}. Feedback recorded.`);
      } catch (error) {
        settle(`Suggestion taken, but feedback failed: ${error.message}`);
      }
    });
    controls.push(button);
    actions.append(button);
  }

  if (card.overrideReasons && card.overrideReasons.length && card.uuid) {
    const override = document.createElement("div");
    override.className = "override";
    const selectId = `override-${card.uuid}`;
    const label = document.createElement("label");
    label.htmlFor = selectId;
    label.textContent = "Override reason";
    const select = document.createElement("select");
    select.id = selectId;
    select.className = "override-reason";
    card.overrideReasons.forEach((reason, index) => select.append(option(String(index), reason.display)));
    const button = document.createElement("button");
    button.type = "button";
    button.className = "override-button secondary";
    button.textContent = "Override: keep the order";
    button.addEventListener("click", async () => {
      const reason = card.overrideReasons[Number(select.value)];
      try {
        await sendFeedback(service, { card: card.uuid, outcome: "overridden", overrideReason: { reason } });
        settle(`Overridden: ${reason.display}. Feedback recorded.`);
      } catch (error) {
        settle(`The override could not be recorded: ${error.message}`);
      }
    });
    const wrapper = document.createElement("div");
    wrapper.append(label, select);
    override.append(wrapper, button);
    controls.push(select, button);
    actions.append(override);
  }
  actions.append(outcome);
  element.append(actions);
  return element;
}

start();
