#include "grammar/token_table.h"

#include <algorithm>
#include <atomic>
#include <numeric>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace pl::grammar {

namespace {
std::atomic<uint64_t> g_next_serial{1};
}

std::shared_ptr<const TokenTable> TokenTable::from_bytes(std::vector<std::string> bytes,
                                                         std::vector<int32_t> eog_ids) {
  auto t = std::make_shared<TokenTable>();
  t->bytes_ = std::move(bytes);
  t->is_eog_.assign(t->bytes_.size(), 0);
  for (int32_t id : eog_ids) {
    PL_CHECK(id >= 0 && static_cast<size_t>(id) < t->bytes_.size(), "eog id {} out of range", id);
    t->is_eog_[static_cast<size_t>(id)] = 1;
    t->bytes_[static_cast<size_t>(id)].clear();  // an end token never stands for text
  }
  std::sort(eog_ids.begin(), eog_ids.end());
  eog_ids.erase(std::unique(eog_ids.begin(), eog_ids.end()), eog_ids.end());
  t->eog_ids_ = std::move(eog_ids);
  t->serial_ = g_next_serial++;
  t->build_trie();
  return t;
}

void TokenTable::build_trie() {
  std::vector<int32_t> order;
  for (int32_t id = 0; id < n_vocab(); ++id) {
    if (!bytes_[static_cast<size_t>(id)].empty()) order.push_back(id);
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    const std::string& x = bytes_[static_cast<size_t>(a)];
    const std::string& y = bytes_[static_cast<size_t>(b)];
    return x != y ? x < y : a < b;
  });
  // Sorted strings visit the trie in preorder: each string shares a prefix
  // with the path of the previous one and opens new nodes below it.
  nodes_.clear();
  trie_tokens_.clear();
  std::vector<uint32_t> path;  // node index per depth - 1
  const std::string* prev = nullptr;
  for (int32_t id : order) {
    const std::string& s = bytes_[static_cast<size_t>(id)];
    PL_CHECK(s.size() < 65535, "token {} is {} bytes long", id, s.size());
    size_t lcp = 0;
    if (prev != nullptr) {
      const size_t n = std::min(prev->size(), s.size());
      while (lcp < n && (*prev)[lcp] == s[lcp]) ++lcp;
    }
    while (path.size() > lcp) {
      nodes_[path.back()].end = static_cast<uint32_t>(nodes_.size());
      path.pop_back();
    }
    for (size_t d = lcp; d < s.size(); ++d) {
      path.push_back(static_cast<uint32_t>(nodes_.size()));
      nodes_.push_back({0, static_cast<uint32_t>(trie_tokens_.size()), static_cast<uint16_t>(d + 1),
                        static_cast<uint8_t>(s[d])});
    }
    trie_tokens_.push_back(id);
    max_depth_ = std::max(max_depth_, s.size());
    prev = &s;
  }
  while (!path.empty()) {
    nodes_[path.back()].end = static_cast<uint32_t>(nodes_.size());
    path.pop_back();
  }
}

std::shared_ptr<const TokenTable> make_token_table(const Tokenizer& tok) {
  const int32_t n = tok.n_vocab();
  std::vector<std::string> bytes(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id) {
    const TokenType type = tok.token_type(id);
    // Control/unknown tokens render as nothing and unused slots are never
    // trained: neither may appear inside structured output.
    if (type == TokenType::Control || type == TokenType::Unknown || type == TokenType::Unused) continue;
    bytes[static_cast<size_t>(id)] = tok.token_to_piece(id);
  }
  return TokenTable::from_bytes(std::move(bytes), tok.eog_ids());
}

}  // namespace pl::grammar
