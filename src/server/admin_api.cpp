// The admin API: GET/POST /api/parallel, each loaded model's parallel limit,
// seen and changed live (docs/API.md). Loopback clients only, unless
// PARALLAMA_ADMIN_TOKEN is set: then a bearer token is required from anyone.
#include "core/error.h"
#include "server/server_impl.h"

namespace pl::server {

using nlohmann::json;

namespace {

bool is_loopback(const std::string& addr) {
  return addr == "127.0.0.1" || addr == "::1" || addr == "::ffff:127.0.0.1" || addr.rfind("127.", 0) == 0;
}

// Constant-time for tokens of the right length: the token must not leak through timing.
bool same_secret(const std::string& given, const std::string& secret) {
  if (given.size() != secret.size() || secret.empty()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < secret.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ secret[i]);
  return diff == 0;
}

}  // namespace

void Server::Impl::check_admin(const httplib::Request& req) const {
  if (!cfg.admin_token.empty()) {
    const std::string auth = req.get_header_value("Authorization");
    if (auth.empty()) throw HttpError(401, "the admin API needs 'Authorization: Bearer <PARALLAMA_ADMIN_TOKEN>'");
    const std::string prefix = "Bearer ";
    if (auth.rfind(prefix, 0) != 0 || !same_secret(auth.substr(prefix.size()), cfg.admin_token))
      throw HttpError(403, "wrong admin token");
    return;
  }
  if (!is_loopback(req.remote_addr))
    throw HttpError(403, "the admin API answers loopback clients only (set PARALLAMA_ADMIN_TOKEN to allow others)");
}

json Server::Impl::parallel_status() {
  json models = json::array();
  for (const auto& r : sched->ps()) {
    json m{{"model", r.key},
           {"num_parallel", r.num_parallel},
           {"source", r.parallel_source},
           {"running", r.running},
           {"queued", r.queued},
           {"ready", r.ready},
           {"context_length", r.num_ctx}};
    EngineGauges g;
    EngineCounters c;
    // The runner's snapshot: never waits for a forward pass.
    if (r.ready && read_runner_stats(r.port, std::chrono::seconds(2), g, c)) {
      m["kv_blocks_total"] = g.kv_blocks_total;
      m["kv_blocks_used"] = g.kv_blocks_used;
      m["kv_used"] = g.kv_blocks_total > 0 ? static_cast<double>(g.kv_blocks_used) / g.kv_blocks_total : 0.0;
      m["max_parallel"] = g.max_parallel;
      m["engine_running"] = g.running;
      m["engine_waiting"] = g.waiting;
    }
    models.push_back(std::move(m));
  }
  const json tuned = tuner->status();
  for (auto& m : models)
    if (tuned.contains(m["model"].get<std::string>())) m["tuner"] = tuned[m["model"].get<std::string>()];
  return json{{"models", models}};
}

void Server::Impl::routes_admin() {
  svr.Get("/api/parallel", ollama_handler([this](const httplib::Request& req, httplib::Response& res) {
    check_admin(req);
    send_json(res, 200, parallel_status());
  }));
  svr.Post("/api/parallel", ollama_handler([this](const httplib::Request& req, httplib::Response& res) {
    check_admin(req);
    json body = parse_body(req.body);
    const std::string key = model(model_field(body)).name.display();
    const json* v = field(body, "num_parallel");
    if (v == nullptr) fail("missing field 'num_parallel' (a count, or \"auto\")");
    json out{{"model", key}};
    try {
      if (v->is_string() && v->get<std::string>() == "auto") {
        start_auto(key);
        out["num_parallel"] = "auto";
        out["source"] = "auto";
      } else {
        if (!v->is_number_integer()) fail("field 'num_parallel' must be a positive integer or \"auto\", got {}", v->dump());
        const int64_t n = v->get<int64_t>();
        if (n < 1 || n > 4096) fail("field 'num_parallel' must be in 1..4096, got {}", n);
        check_fits_pool(key, static_cast<int>(n));
        stop_auto(key);
        const std::string warning = sched->set_parallel(key, static_cast<int>(n), "admin");
        out["num_parallel"] = n;
        out["source"] = "admin";
        if (!warning.empty()) out["warning"] = warning;
      }
    } catch (const sched::NotLoadedError& e) {
      throw HttpError(404, e.what());
    }
    send_json(res, 200, out);
  }));
}

// The KV pool is allocated once, when the runner loads (num_ctx x the parallel limit then,
// in tokens), and a limit change never resizes it: every running sequence needs at least
// one block, so more than the pool's blocks cannot run at all and is refused here with the
// numbers, before the runner is asked (it would refuse too, in its own words). Nothing
// else grows with the limit (the step's scratch buffers are sized by the batch in tokens),
// so no value within the pool can need more memory. docs/ARCHITECTURE.md, "Admin API".
void Server::Impl::check_fits_pool(const std::string& key, int n) {
  for (const auto& r : sched->ps()) {
    if (r.key != key || !r.ready) continue;
    EngineGauges g;
    EngineCounters c;
    if (!read_runner_stats(r.port, std::chrono::seconds(2), g, c) || g.max_parallel <= 0 || n <= g.max_parallel)
      return;  // unknown: the runner checks it again
    const int64_t pool_tokens = static_cast<int64_t>(g.kv_blocks_total) * g.kv_block_size;
    const int64_t full = r.num_ctx > 0 ? pool_tokens / r.num_ctx : 0;
    throw HttpError(400, fmt::format(
        "num_parallel {} does not fit the KV pool of '{}': the pool holds only {} sequence{} of the model's context "
        "({} tokens; {} blocks of {} tokens, sized when the model loaded), and every running sequence needs at "
        "least one block, so at most {} can run at all. The pool is fixed while the model stays loaded (a new "
        "limit allocates no memory); to run more, load it with a larger pool (a higher OLLAMA_NUM_PARALLEL or "
        "PARAMETER num_parallel, or a larger num_ctx)",
        n, key, full, full == 1 ? "" : "s", r.num_ctx, g.kv_blocks_total, g.kv_block_size, g.max_parallel));
  }
}

void Server::Impl::start_auto(const std::string& key) {
  int current = 0;
  for (const auto& r : sched->ps())
    if (r.key == key && r.ready) current = r.num_parallel;
  if (current == 0) throw sched::NotLoadedError(fmt::format("model '{}' is not loaded", key));
  sched->set_parallel(key, current, "auto");  // the source shows "auto" at once; the tuner moves the value
  tuner->enable(key);
}

void Server::Impl::stop_auto(const std::string& key) { tuner->disable(key); }

}  // namespace pl::server
