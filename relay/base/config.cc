#include "relay/base/config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "relay/base/strings.h"

namespace siterelay {

// ---- addresses, ranges, windows -------------------------------------------------------------

std::string ListenAddress::ToString() const {
  if (ipv6) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

namespace {

Result<uint16_t> ParsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) return Status::InvalidArgument("port must be 0-65535");
  uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return Status::InvalidArgument("port must be a number");
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return Status::InvalidArgument("port must be 0-65535");
  return static_cast<uint16_t>(v);
}

}  // namespace

Result<ListenAddress> ListenAddress::Parse(std::string_view text) {
  // inet_pton reads a C string: a NUL would hide whatever follows it.
  if (text.find('\0') != std::string_view::npos) return Status::InvalidArgument("contains NUL");
  ListenAddress a;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::InvalidArgument("expected [IPv6]:port");
    }
    a.host = std::string(text.substr(1, close - 1));
    a.ipv6 = true;
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Status::InvalidArgument("expected address:port");
    a.host = std::string(text.substr(0, colon));
    if (a.host.find(':') != std::string::npos) {
      return Status::InvalidArgument("write IPv6 addresses as [addr]:port");
    }
    port = text.substr(colon + 1);
  }
  uint8_t buf[16];
  if (inet_pton(a.ipv6 ? AF_INET6 : AF_INET, a.host.c_str(), buf) != 1) {
    return Status::InvalidArgument(Quote(a.host) + " is not a numeric IP" +
                                   (a.ipv6 ? "v6" : "v4") + " address");
  }
  SR_ASSIGN_OR_RETURN(a.port, ParsePort(port));
  return a;
}

Result<Cidr> Cidr::Parse(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return Status::InvalidArgument("contains NUL");
  Cidr c;
  size_t slash = text.find('/');
  std::string addr(text.substr(0, slash));
  c.ipv6 = addr.find(':') != std::string::npos;
  if (inet_pton(c.ipv6 ? AF_INET6 : AF_INET, addr.c_str(), c.bytes) != 1) {
    return Status::InvalidArgument(Quote(addr) + " is not a numeric IP address");
  }
  int max = c.ipv6 ? 128 : 32;
  c.prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) return Status::InvalidArgument("bad prefix length");
    int v = 0;
    for (char ch : p) {
      if (ch < '0' || ch > '9') return Status::InvalidArgument("bad prefix length");
      v = v * 10 + (ch - '0');
    }
    if (v > max) {
      return Status::InvalidArgument("prefix length must be 0-" + std::to_string(max));
    }
    c.prefix = v;
  }
  return c;
}

bool Cidr::Contains(const uint8_t* addr, bool addr_ipv6) const {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (addr_ipv6 && !ipv6) {
    if (std::memcmp(addr, kMapped, sizeof kMapped) != 0) return false;
    addr += 12;  // ::ffff:a.b.c.d against an IPv4 range
  } else if (!addr_ipv6 && ipv6) {
    return false;
  }
  int full = prefix / 8;
  if (std::memcmp(addr, bytes, static_cast<size_t>(full)) != 0) return false;
  int rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (addr[full] & mask) == (bytes[full] & mask);
}

Result<TimeWindow> TimeWindow::Parse(std::string_view text) {
  TimeWindow w;
  if (text.empty()) return w;
  auto hhmm = [](std::string_view t, int* minute) {
    if (t.size() != 5 || t[2] != ':') return false;
    for (size_t i : {0u, 1u, 3u, 4u}) {
      if (t[i] < '0' || t[i] > '9') return false;
    }
    int h = (t[0] - '0') * 10 + (t[1] - '0');
    int m = (t[3] - '0') * 10 + (t[4] - '0');
    if (h > 23 || m > 59) return false;
    *minute = h * 60 + m;
    return true;
  };
  size_t dash = text.find('-');
  if (dash == std::string_view::npos || !hhmm(text.substr(0, dash), &w.start_minute) ||
      !hhmm(text.substr(dash + 1), &w.end_minute)) {
    return Status::InvalidArgument("expected \"HH:MM-HH:MM\"");
  }
  if (w.start_minute == w.end_minute) {
    return Status::InvalidArgument("window start and end are equal; use \"\" for any time");
  }
  w.any = false;
  return w;
}

bool TimeWindow::Contains(int minute_of_day) const {
  if (any) return true;
  if (start_minute < end_minute) return minute_of_day >= start_minute && minute_of_day < end_minute;
  return minute_of_day >= start_minute || minute_of_day < end_minute;  // wraps midnight
}

namespace {

bool RelayIdChar(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '-' || ch == '_' || ch == '.';
}

// A host name made fit for relay_id's rule: other bytes become '-', at most 64 of them.
std::string SanitizeRelayId(std::string_view host) {
  std::string id;
  for (char ch : host.substr(0, 64)) id.push_back(RelayIdChar(ch) ? ch : '-');
  return id;
}

}  // namespace

Config Config::Defaults() {
  Config c;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) c.relay_id = SanitizeRelayId(host);
  if (c.relay_id.empty()) c.relay_id = "siterelay";
  auto addr = [](const char* s) { return ListenAddress::Parse(s).value(); };
  c.http.listen = {addr("0.0.0.0:8080")};
  c.https.listen = {addr("0.0.0.0:8443")};
  c.tftp.listen = {addr("0.0.0.0:6969")};
  c.ftp.listen = {addr("0.0.0.0:2121")};
  c.ftp.implicit_tls_listen = {addr("0.0.0.0:9990")};
  c.admin.listen = {addr("127.0.0.1:5050")};
  return c;
}

// ---- the TOML walk --------------------------------------------------------------------------

namespace {

// Reads one TOML table, remembering which keys were consumed so that the rest can be reported
// as unknown, and keeping the first error only (the user fixes one line at a time).
class Reader {
 public:
  Reader(const toml::table& table, std::string prefix, std::string_view source, Status* error)
      : table_(table), prefix_(std::move(prefix)), source_(source), error_(error) {}

  bool failed() const { return !error_->ok(); }

  void String(std::string_view key, std::string* out) {
    const toml::node* n = Take(key);
    if (n == nullptr) return;
    if (auto v = n->value<std::string>(); v && n->is_string()) {
      *out = *v;
    } else {
      Fail(n, key, std::string("expected a string, got ") + TypeName(*n));
    }
  }

  void Bool(std::string_view key, bool* out) {
    const toml::node* n = Take(key);
    if (n == nullptr) return;
    if (!n->is_boolean()) return Fail(n, key, std::string("expected true or false, got ") + TypeName(*n));
    *out = n->as_boolean()->get();
  }

  template <typename T>
  void Int(std::string_view key, T* out, int64_t min,
           int64_t max = std::numeric_limits<int64_t>::max(), std::string_view what = "") {
    const toml::node* n = Take(key);
    if (n == nullptr) return;
    if (!n->is_integer()) {
      return Fail(n, key, std::string("expected an integer, got ") + TypeName(*n));
    }
    int64_t v = n->as_integer()->get();
    if (v < min || v > max) {
      std::string m = "must be ";
      if (max == std::numeric_limits<int64_t>::max()) {
        m += ">= " + std::to_string(min);
      } else {
        m += "between " + std::to_string(min) + " and " + std::to_string(max);
      }
      if (!what.empty()) m += " " + std::string(what);
      m += ", got " + std::to_string(v);
      return Fail(n, key, m);
    }
    *out = static_cast<T>(v);
  }

  void StringList(std::string_view key, std::vector<std::string>* out) {
    const toml::node* n = Take(key);
    if (n == nullptr) return;
    const toml::array* a = n->as_array();
    if (a == nullptr) {
      return Fail(n, key, std::string("expected a list of strings, got ") + TypeName(*n));
    }
    out->clear();
    size_t i = 0;
    for (const toml::node& e : *a) {
      if (!e.is_string()) {
        return Fail(&e, std::string(key) + "[" + std::to_string(i) + "]",
                    std::string("expected a string, got ") + TypeName(e));
      }
      out->push_back(e.as_string()->get());
      ++i;
    }
  }

  // A list of "addr:port" strings.
  void Addresses(std::string_view key, std::vector<ListenAddress>* out) {
    const toml::node* n = table_.get(key);
    std::vector<std::string> raw;
    StringList(key, &raw);
    if (n == nullptr || failed()) return;
    out->clear();
    for (size_t i = 0; i < raw.size(); ++i) {
      auto a = ListenAddress::Parse(raw[i]);
      if (!a.ok()) {
        return Fail(&(*n->as_array())[i], std::string(key) + "[" + std::to_string(i) + "]",
                    "bad address " + Quote(raw[i]) + ": " + a.status().message());
      }
      out->push_back(*a);
    }
  }

  void Cidrs(std::string_view key, std::vector<Cidr>* out) {
    const toml::node* n = table_.get(key);
    std::vector<std::string> raw;
    StringList(key, &raw);
    if (n == nullptr || failed()) return;
    out->clear();
    for (size_t i = 0; i < raw.size(); ++i) {
      auto c = Cidr::Parse(raw[i]);
      if (!c.ok()) {
        return Fail(&(*n->as_array())[i], std::string(key) + "[" + std::to_string(i) + "]",
                    "bad address range " + Quote(raw[i]) + ": " + c.status().message());
      }
      out->push_back(*c);
    }
  }

  // A URL whose scheme is one of `schemes` (or empty when allowed).
  void Url(std::string_view key, std::string* out, std::initializer_list<std::string_view> schemes) {
    const toml::node* n = table_.get(key);
    String(key, out);
    if (n == nullptr || failed() || out->empty()) return;
    size_t sep = out->find("://");
    bool ok = false;
    if (sep != std::string::npos && sep + 3 < out->size()) {
      std::string scheme = out->substr(0, sep);
      for (std::string_view s : schemes) ok = ok || scheme == s;
      // file:///mnt/share/ names an absolute path; every other scheme needs a host.
      ok = ok && ((scheme == "file") == ((*out)[sep + 3] == '/'));
    }
    if (!ok) {
      std::string list;
      for (std::string_view s : schemes) list += (list.empty() ? "" : ", ") + std::string(s);
      return Fail(n, key, Quote(*out) + " is not a URL with scheme " + list);
    }
  }

  const toml::table* Table(std::string_view key) {
    const toml::node* n = Take(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) {
      Fail(n, key, std::string("expected a table [") + std::string(key) + "], got " + TypeName(*n));
      return nullptr;
    }
    return n->as_table();
  }

  const toml::array* TableArray(std::string_view key) {
    const toml::node* n = Take(key);
    if (n == nullptr) return nullptr;
    if (!n->is_array_of_tables()) {
      Fail(n, key, "expected [[" + std::string(key) + "]] tables, got " + TypeName(*n));
      return nullptr;
    }
    return n->as_array();
  }

  // Marks `key` as known and returns its node, for values with a shape of their own.
  const toml::node* Raw(std::string_view key) { return Take(key); }

  // Reports the first key nobody asked for.
  void Finish() {
    if (failed()) return;
    for (const auto& [k, v] : table_) {
      if (seen_.count(std::string(k.str())) == 0) {
        Fail(&v, k.str(), "unknown key");
        return;
      }
    }
  }

  std::string KeyName(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
  }

  void Fail(const toml::node* node, std::string_view key, std::string message) {
    if (failed()) return;
    std::string m(source_);
    if (node != nullptr && node->source().begin.line > 0) {
      m += ":" + std::to_string(node->source().begin.line);
    }
    m += ": " + EscapeControl(KeyName(key)) + ": " + message;  // keys come from the file too
    *error_ = Status::InvalidArgument(std::move(m));
  }

 private:
  const toml::node* Take(std::string_view key) {
    seen_.insert(std::string(key));
    return failed() ? nullptr : table_.get(key);
  }

  static const char* TypeName(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::string: return "a string";
      case toml::node_type::integer: return "an integer";
      case toml::node_type::floating_point: return "a number with a fraction";
      case toml::node_type::boolean: return "a boolean";
      case toml::node_type::array: return "a list";
      case toml::node_type::table: return "a table";
      case toml::node_type::date:
      case toml::node_type::time:
      case toml::node_type::date_time: return "a date/time";
      default: return "nothing";
    }
  }

  const toml::table& table_;
  std::string prefix_;
  std::string_view source_;
  Status* error_;
  std::set<std::string> seen_;
};

std::string Indexed(std::string_view name, size_t i) {
  return std::string(name) + "[" + std::to_string(i) + "]";
}

void ReadListener(Reader& r, ListenerConfig* l) {
  r.Addresses("listen", &l->listen);
  r.Cidrs("allow_from", &l->allow_from);
}

// A root inside the origin's tree: absolute, '/'-separated, no "." or ".." segments.
bool ValidRoot(const std::string& root) {
  if (root.empty() || root.front() != '/') return false;
  if (root.find('\\') != std::string::npos || root.find('\0') != std::string::npos) return false;
  std::string_view rest(root);
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    if (seg == "." || seg == "..") return false;
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return true;
}

// toml++ 3.3 (Debian 12's) reaches __builtin_unreachable() when it tests some non-ASCII code
// points for whitespace (upstream issues #190 and #295, fixed after 3.3): undefined behaviour on a
// config file with, say, an "é" where a key or value should start. TOML allows non-ASCII only in
// strings and comments, so this scan refuses it everywhere else before toml++ sees the text, and
// also refuses it right after a line-ending backslash in a multi-line basic string (#190), the one
// place inside a string where toml++ skips whitespace. Returns the 1-based line of the problem, or
// 0 when the text is safe to hand to toml++.
size_t UnsafeForToml(std::string_view text) {
  enum class State { kCode, kComment, kBasic, kMultiBasic, kLiteral, kMultiLiteral };
  State state = State::kCode;
  size_t line = 1;
  auto starts = [&](size_t i, std::string_view token) { return text.substr(i, token.size()) == token; };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool non_ascii = static_cast<unsigned char>(c) >= 0x80;
    if (c == '\n') ++line;
    switch (state) {
      case State::kCode:
        if (non_ascii) return line;
        if (c == '#') {
          state = State::kComment;
        } else if (starts(i, "\"\"\"")) {
          state = State::kMultiBasic;
          i += 2;
        } else if (c == '"') {
          state = State::kBasic;
        } else if (starts(i, "'''")) {
          state = State::kMultiLiteral;
          i += 2;
        } else if (c == '\'') {
          state = State::kLiteral;
        }
        break;
      case State::kComment:
        if (c == '\n') state = State::kCode;
        break;
      case State::kBasic:
        if (c == '\\') {
          ++i;  // the escaped byte, whatever it is
        } else if (c == '"' || c == '\n') {
          state = State::kCode;  // an unterminated string is toml++'s error to report
        }
        break;
      case State::kLiteral:
        if (c == '\'' || c == '\n') state = State::kCode;
        break;
      case State::kMultiBasic:
        if (c == '\\') {
          size_t j = i + 1;
          while (j < text.size() && (text[j] == ' ' || text[j] == '\t')) ++j;
          if (j < text.size() && (text[j] == '\n' || text[j] == '\r')) {
            // A line-ending backslash: toml++ skips whitespace up to the next text.
            while (j < text.size() && (text[j] == ' ' || text[j] == '\t' || text[j] == '\n' ||
                                       text[j] == '\r')) {
              if (text[j] == '\n') ++line;
              ++j;
            }
            if (j < text.size() && static_cast<unsigned char>(text[j]) >= 0x80) return line;
            i = j - 1;
          } else {
            ++i;
          }
        } else if (starts(i, "\"\"\"")) {
          // Up to two more quotes belong to the content ("""a""""" is valid TOML).
          i += 2;
          while (i + 1 < text.size() && text[i + 1] == '"') ++i;
          state = State::kCode;
        }
        break;
      case State::kMultiLiteral:
        if (starts(i, "'''")) {
          i += 2;
          while (i + 1 < text.size() && text[i + 1] == '\'') ++i;
          state = State::kCode;
        }
        break;
    }
  }
  return 0;
}

}  // namespace

Result<Config> ParseConfig(std::string_view text, std::string_view source) {
  if (size_t line = UnsafeForToml(text); line != 0) {
    return Status::InvalidArgument(std::string(source) + ":" + std::to_string(line) +
                                   ": non-ASCII text outside a quoted string or comment");
  }
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << source << ":" << e.source().begin.line << ": " << EscapeControl(e.description());
    return Status::InvalidArgument(m.str());
  }

  Config c = Config::Defaults();
  c.source = std::string(source);
  Status error;
  Reader top(root, "", source, &error);

  top.String("data_dir", &c.data_dir);
  if (!error.ok()) return error;
  if (c.data_dir.empty()) top.Fail(root.get("data_dir"), "data_dir", "must not be empty");
  top.String("relay_id", &c.relay_id);
  if (error.ok()) {
    bool ok = !c.relay_id.empty() && c.relay_id.size() <= 64;
    for (char ch : c.relay_id) ok = ok && RelayIdChar(ch);
    if (!ok) {
      top.Fail(root.get("relay_id"), "relay_id",
               "must be 1-64 letters, digits, '-', '_' or '.' (it names batches upstream)");
    }
  }

  if (const toml::table* t = top.Table("origin")) {
    Reader r(*t, "origin", source, &error);
    OriginConfig& o = c.origin;
    r.Url("url", &o.url, {"http", "https", "file"});
    if (!o.url.empty() && o.url.back() != '/') o.url.push_back('/');
    r.String("user", &o.user);
    r.String("password", &o.password);
    r.String("ca_file", &o.ca_file);
    r.String("manifest", &o.manifest);
    r.StringList("prefetch", &o.prefetch);
    r.Int("fresh_for", &o.fresh_for, 0);
    r.Int("negative_for", &o.negative_for, 0);
    r.Int("sync_interval", &o.sync_interval, 0);
    r.Int("max_rate", &o.max_rate, 0);
    r.Bool("hold_configs", &o.hold_configs);
    std::string window;
    r.String("window", &window);
    if (error.ok()) {
      auto w = TimeWindow::Parse(window);
      if (w.ok()) {
        o.window = *w;
      } else {
        r.Fail(t->get("window"), "window", Quote(window) + ": " + w.status().message());
      }
    }
    if (error.ok() && o.url.empty() && (!o.manifest.empty() || !o.prefetch.empty())) {
      r.Fail(t->get(o.manifest.empty() ? "prefetch" : "manifest"),
             o.manifest.empty() ? "prefetch" : "manifest", "needs origin.url");
    }
    if (const toml::array* routes = r.TableArray("route")) {
      for (size_t i = 0; i < routes->size() && error.ok(); ++i) {
        const toml::table& rt = *(*routes)[i].as_table();
        Reader rr(rt, "origin." + Indexed("route", i), source, &error);
        OriginRoute route;
        rr.String("match", &route.match);
        rr.Url("url", &route.url, {"http", "https", "file"});
        rr.String("user", &route.user);
        rr.String("password", &route.password);
        if (error.ok() && route.match.empty()) rr.Fail(&rt, "match", "is required");
        if (error.ok() && route.url.empty()) rr.Fail(&rt, "url", "is required");
        if (!route.url.empty() && route.url.back() != '/') route.url.push_back('/');
        rr.Finish();
        o.routes.push_back(std::move(route));
      }
    }
    r.Finish();
  }

  if (const toml::array* accounts = top.TableArray("account")) {
    std::set<std::string> users;
    for (size_t i = 0; i < accounts->size() && error.ok(); ++i) {
      const toml::table& at = *(*accounts)[i].as_table();
      Reader r(at, Indexed("account", i), source, &error);
      Account a;
      r.String("user", &a.user);
      r.String("password", &a.password);
      r.String("root", &a.root);
      if (error.ok() && a.user.empty()) r.Fail(&at, "user", "is required");
      if (error.ok() && !users.insert(a.user).second) {
        r.Fail(at.get("user"), "user", Quote(a.user) + " is defined twice");
      }
      if (error.ok() && !ValidRoot(a.root)) {
        r.Fail(at.get("root"), "root",
               Quote(a.root) + " must start with '/' and contain no '.', '..' or '\\'");
      }
      r.Finish();
      c.accounts.push_back(std::move(a));
    }
  }

  if (const toml::table* t = top.Table("http")) {
    Reader r(*t, "http", source, &error);
    ReadListener(r, &c.http);
    r.Finish();
  }
  if (const toml::table* t = top.Table("https")) {
    Reader r(*t, "https", source, &error);
    ReadListener(r, &c.https);
    r.Finish();
  }
  if (const toml::table* t = top.Table("tftp")) {
    Reader r(*t, "tftp", source, &error);
    ReadListener(r, &c.tftp);
    r.Bool("allow_uploads", &c.tftp.allow_uploads);
    r.Finish();
  }
  if (const toml::table* t = top.Table("ftp")) {
    Reader r(*t, "ftp", source, &error);
    ReadListener(r, &c.ftp);
    r.Addresses("implicit_tls_listen", &c.ftp.implicit_tls_listen);
    if (const toml::node* n = t->get("passive_ports"); n != nullptr && error.ok()) {
      r.Raw("passive_ports");
      const toml::array* a = n->as_array();
      if (a == nullptr || a->size() != 2 || !(*a)[0].is_integer() || !(*a)[1].is_integer()) {
        r.Fail(n, "passive_ports", "expected [low, high], two port numbers");
      } else {
        int64_t lo = (*a)[0].as_integer()->get();
        int64_t hi = (*a)[1].as_integer()->get();
        if (lo < 1 || hi > 65535 || lo > hi) {
          r.Fail(n, "passive_ports", "expected 1 <= low <= high <= 65535");
        } else {
          c.ftp.passive_port_min = static_cast<uint16_t>(lo);
          c.ftp.passive_port_max = static_cast<uint16_t>(hi);
        }
      }
    }
    r.Finish();
  }
  if (const toml::table* t = top.Table("tls")) {
    Reader r(*t, "tls", source, &error);
    r.String("cert", &c.tls.cert);
    r.String("key", &c.tls.key);
    r.String("min_version", &c.tls.min_version);
    const std::string& v = c.tls.min_version;
    if (error.ok() && v != "1.0" && v != "1.1" && v != "1.2" && v != "1.3") {
      r.Fail(t->get("min_version"), "min_version",
             Quote(v) + " is not one of \"1.0\", \"1.1\", \"1.2\", \"1.3\"");
    }
    if (error.ok() && c.tls.cert.empty() != c.tls.key.empty()) {
      r.Fail(t->get(c.tls.cert.empty() ? "key" : "cert"), c.tls.cert.empty() ? "cert" : "key",
             "cert and key go together: set both, or neither for a self-signed certificate");
    }
    r.Finish();
  }
  if (const toml::table* t = top.Table("uploads")) {
    Reader r(*t, "uploads", source, &error);
    r.Int("max_bytes", &c.upload_max_bytes, 1);
    r.Finish();
  }
  if (const toml::table* t = top.Table("logs")) {
    Reader r(*t, "logs", source, &error);
    r.Url("upstream", &c.logs.upstream, {"http", "https"});
    r.String("user", &c.logs.user);
    r.String("password", &c.logs.password);
    r.Int("batch_bytes", &c.logs.batch_bytes, 1024, int64_t{1} << 32, "bytes");
    r.Int("batch_age", &c.logs.batch_age, 1);
    r.Int("spool_bytes", &c.logs.spool_bytes, 1);
    r.String("dictionary", &c.logs.dictionary);
    if (error.ok() && c.logs.spool_bytes < c.logs.batch_bytes) {
      r.Fail(t->get("spool_bytes"), "spool_bytes", "must be at least logs.batch_bytes");
    }
    r.Finish();
  }
  if (const toml::table* t = top.Table("cache")) {
    Reader r(*t, "cache", source, &error);
    r.Int("max_bytes", &c.cache_max_bytes, 0);
    r.Finish();
  }
  if (const toml::table* t = top.Table("admin")) {
    Reader r(*t, "admin", source, &error);
    ReadListener(r, &c.admin);
    r.String("user", &c.admin.user);
    r.String("password", &c.admin.password);
    r.Int("device_retention", &c.admin.device_retention, 0);
    if (error.ok() && c.admin.user.empty()) r.Fail(t->get("user"), "user", "must not be empty");
    r.Finish();
  }
  top.Finish();
  if (!error.ok()) return error;
  return c;
}

namespace {

Status CheckReadable(const Config& c, std::string_view key, const std::string& path) {
  if (path.empty()) return Status::Ok();
  std::ifstream f(path);
  if (!f) {
    return Status::InvalidArgument(c.source + ": " + std::string(key) + ": cannot read " +
                                   Quote(path) + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

Result<Config> LoadConfig(const std::string& path) {
  if (path.empty()) return Config::Defaults();
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    return Status::InvalidArgument(path + ": cannot read config file: " + std::strerror(errno));
  }
  std::ostringstream text;
  text << f.rdbuf();
  SR_ASSIGN_OR_RETURN(Config c, ParseConfig(text.str(), path));
  SR_RETURN_IF_ERROR(CheckReadable(c, "origin.ca_file", c.origin.ca_file));
  SR_RETURN_IF_ERROR(CheckReadable(c, "tls.cert", c.tls.cert));
  SR_RETURN_IF_ERROR(CheckReadable(c, "tls.key", c.tls.key));
  return c;
}

}  // namespace siterelay
