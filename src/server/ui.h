// The live view: one self-contained HTML page (inline CSS and JS, no external
// resources, no build step) that polls /api/ps, /api/parallel and /metrics
// every second and shows each loaded model's parallel limit, running and
// queued requests, KV use and a live throughput chart.
#pragma once

#include <httplib.h>

#include <string>

namespace pl::server {

// GET /ui: the page. GET / (and HEAD /): the page for browsers (their Accept
// prefers text/html), "parallama is running" for every other client, as Ollama answers.
void register_ui_routes(httplib::Server& svr);

// Does an Accept header ask for HTML before plain text? Only an explicit
// text/html counts (curl's and most clients' "*/*" get text).
bool prefers_html(const std::string& accept);

const std::string& ui_page();

}  // namespace pl::server
