// Values of the Jinja interpreter: Python's None, bool, int, float, str,
// list/tuple and dict (insertion-ordered), Jinja's Undefined and namespace,
// and callables (macros, globals, bound methods).
//
// Values are cheap to copy: strings, lists and dicts are shared and immutable
// (transformers renders in an immutable sandbox, so templates never mutate a
// list or dict); only a namespace is mutable, and it is shared by reference as
// in Python.
//
// Every list/dict records its nesting depth and creating one deeper than
// kMaxDepth throws: printing, comparing and destroying values recurse, so a
// template must not be able to build a structure deep enough to overflow
// the stack.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace pl::chat::jinja {

// An error while rendering; the interpreter prefixes the template position.
class Fault : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fault(const std::string& msg);

inline constexpr uint32_t kMaxDepth = 128;

// Step and size accounting shared by everything a render does, so that any
// hostile template stops with an error instead of hanging or exhausting memory.
// Memory is counted cumulatively (bytes of strings written, 48 bytes per list
// or dict element created) and never given back, which bounds both the peak
// and the work; the render context itself is not counted.
class Budget {
 public:
  Budget(uint64_t max_steps, size_t max_bytes, size_t max_memory)
      : steps_left_(max_steps), max_bytes_(max_bytes), memory_left_(max_memory), max_memory_(max_memory) {}
  void step(uint64_t n = 1) {
    if (n > steps_left_) fault("template exceeded its step limit");
    steps_left_ -= n;
  }
  // A string (or the output) is about to reach `total` bytes: refuse sizes
  // over the output limit.
  void size(size_t total) {
    if (total > max_bytes_) fault("template output exceeded " + std::to_string(max_bytes_) + " bytes");
  }
  // `added` bytes are written to a string that then holds `total`: one step
  // per 64 bytes, so that copying large strings over and over runs out of steps.
  void write(size_t total, size_t added) {
    size(total);
    step(1 + added / 64);
    alloc(added);
  }
  void alloc(size_t n) {
    if (n > memory_left_) fault("template used more than " + std::to_string(max_memory_) + " bytes of memory");
    memory_left_ -= n;
  }
  // n list or dict elements are about to be created.
  void elements(size_t n) {
    step(n);
    alloc(n * kElementBytes);
  }
  size_t max_bytes() const { return max_bytes_; }

 private:
  static constexpr size_t kElementBytes = 48;
  uint64_t steps_left_;
  size_t max_bytes_;
  size_t memory_left_, max_memory_;
};

enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable, Loop };

class Value;
struct ListData;
struct DictData;
struct Callable;
struct LoopInfo;
class Interp;

class Value {
 public:
  Value() = default;  // undefined
  static Value undefined(std::string name = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(std::string s);
  static Value list(std::vector<Value> items, bool tuple = false);
  static Value dict(DictData d);
  static Value ns(DictData d);
  static Value callable(std::shared_ptr<const Callable> fn);
  static Value loop(std::shared_ptr<const LoopInfo> info);
  // JSON objects keep their key order; throws Fault past kMaxDepth.
  static Value from_json(const nlohmann::ordered_json& j, uint32_t depth = 0);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_int() const { return kind_ == Kind::Int; }
  // int, float or bool (Python's numbers: True + 1 == 2).
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
  bool is_tuple() const;

  bool truthy() const;
  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::Float ? static_cast<int64_t>(f_) : i_; }
  double as_double() const { return kind_ == Kind::Float ? f_ : static_cast<double>(i_); }
  const std::string& str() const;
  const std::vector<Value>& items() const;
  const DictData& dict() const;
  DictData& ns_data() const;
  const Callable& fn() const;
  const LoopInfo& loop_info() const;
  // The variable name an undefined value came from ("" when unknown).
  const std::string& undefined_name() const;
  uint32_t depth() const;
  // Identity of shared data (namespace and callable equality).
  const void* identity() const { return ptr_.get(); }

 private:
  Kind kind_ = Kind::Undefined;
  bool b_ = false;
  int64_t i_ = 0;  // also a bool's 0/1, so that as_int works on bools
  double f_ = 0;
  std::shared_ptr<void> ptr_;  // string, ListData, DictData, Callable, LoopInfo; for undefined the name
};

struct ListData {
  std::vector<Value> items;
  bool tuple = false;
  uint32_t depth = 1;
};

// An insertion-ordered str -> Value map; large maps get a hash index.
struct DictData {
  std::vector<std::pair<std::string, Value>> entries;
  uint32_t depth = 1;

  const Value* find(std::string_view key) const;
  // Inserts, or replaces the value in place (the key keeps its position).
  void set(std::string key, Value v);
  void clear() {
    entries.clear();
    index_.clear();
  }
  size_t size() const { return entries.size(); }

 private:
  std::unordered_map<std::string, size_t> index_;  // used once entries.size() > kIndexFrom
  static constexpr size_t kIndexFrom = 8;
};

// The `loop` variable of a for loop; its attributes are computed on access.
struct LoopInfo {
  std::shared_ptr<const std::vector<Value>> items;
  size_t index0 = 0;
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

struct Callable {
  virtual ~Callable() = default;
  virtual Value call(Interp& in, CallArgs& args) const = 0;
  virtual std::string name() const = 0;
};

// Python's type(x).__name__, for error messages.
std::string type_name(const Value& v);

// Python str() (Undefined prints as empty) and repr().
std::string to_str(const Value& v, Budget& budget);
std::string to_repr(const Value& v, Budget& budget);
void append_str(std::string& out, const Value& v, Budget& budget);

// json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers'
// tojson filter calls it (no HTML escaping, non-ASCII kept unless ensure_ascii).
struct JsonStyle {
  std::optional<std::string> indent;  // nullopt: one line
  std::string item_sep = ", ";        // ", " on one line, "," with indent (Python's default)
  std::string key_sep = ": ";
  bool ensure_ascii = false;
  bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonStyle& style, Budget& budget);

// Python ==, and < for the orderable pairs (numbers, strings, lists);
// compare() throws Fault for others. Both charge one step per element visited.
bool equal(const Value& a, const Value& b, Budget& budget);
int compare(const Value& a, const Value& b, Budget& budget);

}  // namespace pl::chat::jinja
