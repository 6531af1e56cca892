#include "tokenizer/bpe_pretokenize.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace pl::tok {
namespace {

// The split patterns below are data: each is the pre-tokenizer regex of a
// model family's tokenizer.json (HF tokenizers), run by PCRE2 in UTF + UCP
// mode so \p{L}, \p{N}, \s and (?i) follow Unicode as the originals do.

// GPT-2 (and every ByteLevel pre-tokenizer with use_regex).
constexpr std::string_view kGpt2 =
    R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";
// Llama 3 (tiktoken cl100k-style): digits in groups of up to three.
constexpr std::string_view kLlama3 =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// Qwen2: as Llama 3 but single digits.
constexpr std::string_view kQwen2 =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kSeedCoder =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kBailing =
    R"re('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)re";
// Mistral Tekken: case-aware words.
constexpr std::string_view kTekken =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// GPT-4o (o200k) and Llama 4.
constexpr std::string_view kGpt4o =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// DeepSeek LLM: cased letters (Lu/Ll/Lt) spelled out as ranges, ASCII and
// full-width punctuation, a trailing-space rule, CJK/Hangul runs, numbers.
constexpr std::string_view kDeepseekLetters =
    R"re(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)re";
constexpr std::string_view kDeepseekPunct = R"re(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)re";
constexpr std::string_view kCjkHangul = R"re([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re";
constexpr std::string_view kDeepseek3Main =
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kPoro = R"re( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+)re";

struct Entry {
  std::vector<std::string_view> names;
  PreTokenizerSpec spec;
};

const std::vector<Entry>& table() {
  static const std::vector<Entry> t = {
      {{"", "default", "gpt-2", "phi-2", "mpt", "olmo", "jais", "gigachat", "jina-es", "jina-de", "jina-v2-es",
        "jina-v2-de", "a.x-4.0", "mellum", "exaone4", "trillion", "granite-docling"},
       {"gpt-2", {kGpt2}}},
      {{"jina-v1-en", "jina-v2-code", "roberta-bpe"}, {"roberta", {kGpt2}, false, false, true}},
      {{"llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
       {"llama3", {kLlama3}, true, true}},
      {{"dbrx", "smaug-bpe", "chatglm-bpe", "glm4"}, {"llama3-regex", {kLlama3}}},
      {{"qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2", "hunyuan", "grok-2"}, {"qwen2", {kQwen2}}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       {"starcoder", {R"re(\p{N})re", kGpt2}}},
      {{"falcon"}, {"falcon", {R"re([\p{P}\$\+<=>\^~\|`]+)re", kGpt2, "[0-9][0-9][0-9]"}}},
      {{"deepseek-llm"},
       {"deepseek-llm", {"[\r\n]", kDeepseekLetters, kDeepseekPunct, R"re(\s+$)re", kCjkHangul, R"re(\p{N}+)re"}}},
      {{"deepseek-coder"},
       {"deepseek-coder", {"[\r\n]", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", kCjkHangul, R"re(\p{N})re"}}},
      {{"deepseek-v3", "hunyuan-dense"},
       {"deepseek-v3", {R"re(\p{N}{1,3})re", R"re([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re", kDeepseek3Main}}},
      {{"poro-chat", "bloom", "gpt3-finnish"}, {"bloom", {kPoro}}},
      {{"viking"}, {"viking", {kPoro, R"re(\p{N})re"}}},
      {{"tekken"}, {"tekken", {kTekken}, true, true}},
      {{"chameleon"},
       {"chameleon",
        {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", R"re(([\t\n]|    |  ))re", R"re(\p{N})re",
         R"re([\p{P}!-/:-@\[-`{-~])re", kGpt2},
        false,
        true}},
      {{"gpt-4o", "llama4", "minimax-m2"}, {"gpt-4o", {kGpt4o}}},
      {{"bailingmoe", "bailingmoe2", "llada-moe"}, {"bailingmoe", {kBailing}}},
      {{"seed-coder"}, {"seed-coder", {kSeedCoder}}},
  };
  return t;
}

std::string pcre2_message(int code) {
  std::array<PCRE2_UCHAR, 256> buf{};
  pcre2_get_error_message(code, buf.data(), buf.size());
  return reinterpret_cast<const char*>(buf.data());
}

// Per-thread match scratch: the compiled patterns are shared and immutable,
// match data and the JIT stack are not. A 4 MiB JIT stack ceiling keeps
// backtracking over very long runs (\s+(?!\S) on megabytes of spaces) from
// failing where the 32 KiB default would.
struct MatchScratch {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;

  MatchScratch() {
    data = pcre2_match_data_create(32, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    PL_CHECK(data != nullptr && context != nullptr && jit_stack != nullptr, "PCRE2 allocation failed");
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;
};

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

}  // namespace

const PreTokenizerSpec* find_pre_tokenizer(std::string_view pre) {
  for (const Entry& e : table()) {
    for (std::string_view n : e.names) {
      if (n == pre) return &e.spec;
    }
  }
  return nullptr;
}

std::string known_pre_tokenizer_names() {
  std::string out;
  for (const Entry& e : table()) {
    for (std::string_view n : e.names) {
      if (n.empty()) continue;
      if (!out.empty()) out += ", ";
      out += n;
    }
  }
  return out;
}

RegexSplitter::RegexSplitter(const std::vector<std::string_view>& patterns) {
  for (std::string_view p : patterns) {
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &err_offset, nullptr);
    if (code == nullptr) {
      for (pcre2_code* c : codes_) pcre2_code_free(c);
      fail("pre-tokenizer regex does not compile at offset {}: {} (pattern: {})", err_offset, pcre2_message(err), p);
    }
    // JIT is an optimisation: where it is unavailable the interpreter gives the same matches.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    codes_.push_back(code);
  }
}

RegexSplitter::~RegexSplitter() {
  for (pcre2_code* c : codes_) pcre2_code_free(c);
}

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  if (text.empty()) return;
  MatchScratch& ms = scratch();
  std::vector<std::string_view> cur{text};
  std::vector<std::string_view> next;
  for (pcre2_code* code : codes_) {
    next.clear();
    for (std::string_view frag : cur) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(frag.data());
      size_t start = 0;     // where the next search begins
      size_t emitted = 0;   // end of the last piece emitted
      while (start < frag.size()) {
        const int rc = pcre2_match(code, subject, frag.size(), start, PCRE2_NO_UTF_CHECK, ms.data, ms.context);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) fail("pre-tokenizer regex failed on a {}-byte piece: {}", frag.size(), pcre2_message(rc));
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ms.data);
        const size_t m_begin = ov[0], m_end = ov[1];
        if (m_end == m_begin) {
          // An empty match splits nothing; step over one character.
          if (m_begin >= frag.size()) break;
          start = m_begin + utf8_len(static_cast<uint8_t>(frag[m_begin]));
          continue;
        }
        if (m_begin > emitted) next.push_back(frag.substr(emitted, m_begin - emitted));
        next.push_back(frag.substr(m_begin, m_end - m_begin));
        emitted = start = m_end;
      }
      if (emitted < frag.size()) next.push_back(frag.substr(emitted));
    }
    cur.swap(next);
  }
  pieces.insert(pieces.end(), cur.begin(), cur.end());
}

}  // namespace pl::tok
