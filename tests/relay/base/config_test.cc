#include "relay/base/config.h"

#include <gtest/gtest.h>

#include "tests/testing/temp_dir.h"

namespace siterelay {
namespace {

// The sample of CONTRACT.md, verbatim in substance.
constexpr const char* kContractSample = R"toml(
data_dir = "/var/lib/siterelay"
relay_id = "branch-042"

[origin]
url = "https://prov.example.com/tenant/"
user = ""
password = ""
ca_file = ""
manifest = ""
prefetch = []
fresh_for = 60
negative_for = 30
sync_interval = 3600
max_rate = 0
window = ""

[[origin.route]]
match = "*.ld"
url = "https://fw.example.com/ucs/"
user = ""
password = ""

[[account]]
user = "PlcmSpIp"
password = "PlcmSpIp"
root = "/"

[http]
listen = ["0.0.0.0:8080"]
[https]
listen = ["0.0.0.0:8443"]
[tftp]
listen = ["0.0.0.0:6969"]
allow_uploads = false
[ftp]
listen = ["0.0.0.0:2121"]
implicit_tls_listen = ["0.0.0.0:9990"]
passive_ports = [50000, 50100]
[tls]
cert = ""
key = ""
min_version = "1.2"
[uploads]
max_bytes = 16777216
[logs]
upstream = ""
user = ""
password = ""
batch_bytes = 1048576
batch_age = 60
spool_bytes = 536870912
[cache]
max_bytes = 0
[admin]
listen = ["127.0.0.1:5050"]
user = "admin"
password = ""
device_retention = 7776000
)toml";

std::string ErrorOf(std::string_view toml) {
  auto c = ParseConfig(toml, "relay.toml");
  if (c.ok()) return "<parsed>";
  return c.status().message();
}

TEST(ConfigTest, DefaultsMatchTheContract) {
  Config c = Config::Defaults();
  EXPECT_EQ(c.data_dir, "./siterelay-data");
  EXPECT_FALSE(c.relay_id.empty());
  ASSERT_EQ(c.http.listen.size(), 1u);
  EXPECT_EQ(c.http.listen[0].ToString(), "0.0.0.0:8080");
  EXPECT_EQ(c.https.listen[0].port, 8443);
  EXPECT_EQ(c.tftp.listen[0].port, 6969);
  EXPECT_EQ(c.ftp.listen[0].port, 2121);
  EXPECT_EQ(c.ftp.implicit_tls_listen[0].port, 9990);
  EXPECT_EQ(c.admin.listen[0].ToString(), "127.0.0.1:5050");
  EXPECT_EQ(c.origin.fresh_for, 60);
  EXPECT_EQ(c.origin.negative_for, 30);
  EXPECT_EQ(c.upload_max_bytes, 16u << 20);
  EXPECT_EQ(c.logs.batch_bytes, 1u << 20);
  EXPECT_EQ(c.tls.min_version, "1.2");
  EXPECT_EQ(c.admin.user, "admin");
  EXPECT_EQ(c.admin.device_retention, 90 * 86400);
  EXPECT_TRUE(c.accounts.empty());
}

TEST(ConfigTest, TheProductionConfigParsesWithThePackagesPorts) {
  auto c = LoadConfig(SITERELAY_SOURCE_DIR "/image/systemd/siterelay.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->data_dir, "/var/lib/siterelay");
  ASSERT_EQ(c->http.listen.size(), 2u);
  EXPECT_EQ(c->http.listen[0].port, 80);
  EXPECT_TRUE(c->http.listen[1].ipv6);
  EXPECT_EQ(c->https.listen[0].port, 8443);
  EXPECT_EQ(c->tftp.listen[0].port, 69);
  EXPECT_EQ(c->ftp.listen[0].port, 21);
  EXPECT_EQ(c->ftp.implicit_tls_listen[0].port, 990);
  EXPECT_EQ(c->admin.listen[0].port, 5050);
  EXPECT_EQ(c->origin.url, "");
}

TEST(ConfigTest, EmptyFileMeansDefaults) {
  auto c = ParseConfig("", "relay.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->data_dir, "./siterelay-data");
  EXPECT_EQ(c->source, "relay.toml");
}

TEST(ConfigTest, ParsesTheContractSample) {
  auto c = ParseConfig(kContractSample, "relay.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->data_dir, "/var/lib/siterelay");
  EXPECT_EQ(c->relay_id, "branch-042");
  EXPECT_EQ(c->origin.url, "https://prov.example.com/tenant/");
  ASSERT_EQ(c->origin.routes.size(), 1u);
  EXPECT_EQ(c->origin.routes[0].match, "*.ld");
  ASSERT_EQ(c->accounts.size(), 1u);
  EXPECT_EQ(c->accounts[0].user, "PlcmSpIp");
  EXPECT_EQ(c->ftp.passive_port_min, 50000);
  EXPECT_EQ(c->ftp.passive_port_max, 50100);
  EXPECT_TRUE(c->origin.window.any);
}

TEST(ConfigTest, OriginUrlGetsATrailingSlash) {
  auto c = ParseConfig("[origin]\nurl = \"http://o.example/tenant\"\n", "relay.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->origin.url, "http://o.example/tenant/");
}

TEST(ConfigTest, LogDictionaryIsOffUnlessNamed) {
  EXPECT_EQ(Config::Defaults().logs.dictionary, "");
  auto c = ParseConfig("[logs]\ndictionary = \"/etc/siterelay/logs.dict\"\n", "relay.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->logs.dictionary, "/etc/siterelay/logs.dict");
}

TEST(ConfigTest, EmptyListenerListSwitchesProtocolOff) {
  auto c = ParseConfig("[tftp]\nlisten = []\n", "relay.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->tftp.listen.empty());
}

TEST(ConfigTest, AcceptsIpv6AndAllowFrom) {
  auto c = ParseConfig("[http]\nlisten = [\"[::1]:0\", \"127.0.0.1:8080\"]\n"
                       "allow_from = [\"10.0.0.0/8\", \"::1\"]\n",
                       "relay.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->http.listen[0].ToString(), "[::1]:0");
  EXPECT_TRUE(c->http.listen[0].ipv6);
  ASSERT_EQ(c->http.allow_from.size(), 2u);
}

struct BadCase {
  const char* toml;
  const char* message;  // the whole one-line error
};

class ConfigErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrorTest, NamesFileLineKeyAndProblem) {
  std::string err = ErrorOf(GetParam().toml);
  EXPECT_EQ(err, GetParam().message);
  EXPECT_EQ(err.find('\n'), std::string::npos) << "errors are one line";
}

INSTANTIATE_TEST_SUITE_P(
    EveryMessage, ConfigErrorTest,
    ::testing::Values(
        BadCase{"bogus = 1\n", "relay.toml:1: bogus: unknown key"},
        BadCase{"[http]\nlisten = [\"0.0.0.0:8080\"]\nlisen = []\n",
                "relay.toml:3: http.lisen: unknown key"},
        BadCase{"[htp]\n", "relay.toml:1: htp: unknown key"},
        BadCase{"data_dir = 5\n", "relay.toml:1: data_dir: expected a string, got an integer"},
        BadCase{"data_dir = \"\"\n", "relay.toml:1: data_dir: must not be empty"},
        BadCase{"relay_id = \"branch 42\"\n",
                "relay.toml:1: relay_id: must be 1-64 letters, digits, '-', '_' or '.' (it names "
                "batches upstream)"},
        BadCase{"[http]\nlisten = [\"0.0.0.0:80800\"]\n",
                "relay.toml:2: http.listen[0]: bad address \"0.0.0.0:80800\": port must be "
                "0-65535"},
        BadCase{"[http]\nlisten = [\"0.0.0.0:99999\"]\n",
                "relay.toml:2: http.listen[0]: bad address \"0.0.0.0:99999\": port must be "
                "0-65535"},
        BadCase{"[https]\nlisten = [\"example.com:8443\"]\n",
                "relay.toml:2: https.listen[0]: bad address \"example.com:8443\": \"example.com\" "
                "is not a numeric IPv4 address"},
        BadCase{"[admin]\ndevice_retention = -1\n",
                "relay.toml:2: admin.device_retention: must be >= 0, got -1"},
        BadCase{"[admin]\nlisten = [\"127.0.0.1\"]\n",
                "relay.toml:2: admin.listen[0]: bad address \"127.0.0.1\": expected "
                "address:port"},
        BadCase{"[ftp]\nlisten = [\"::1:21\"]\n",
                "relay.toml:2: ftp.listen[0]: bad address \"::1:21\": write IPv6 addresses as "
                "[addr]:port"},
        BadCase{"[http]\nlisten = \"0.0.0.0:8080\"\n",
                "relay.toml:2: http.listen: expected a list of strings, got a string"},
        BadCase{"[http]\nlisten = [8080]\n",
                "relay.toml:2: http.listen[0]: expected a string, got an integer"},
        BadCase{"[tftp]\nallow_from = [\"10.0.0.0/33\"]\n",
                "relay.toml:2: tftp.allow_from[0]: bad address range \"10.0.0.0/33\": prefix "
                "length must be 0-32"},
        BadCase{"[tftp]\nallow_uploads = \"yes\"\n",
                "relay.toml:2: tftp.allow_uploads: expected true or false, got a string"},
        BadCase{"[origin]\nurl = \"ftp://o.example/\"\n",
                "relay.toml:2: origin.url: \"ftp://o.example/\" is not a URL with scheme http, "
                "https, file"},
        BadCase{"[origin]\nfresh_for = -1\n",
                "relay.toml:2: origin.fresh_for: must be >= 0, got -1"},
        BadCase{"[origin]\nfresh_for = 1.5\n",
                "relay.toml:2: origin.fresh_for: expected an integer, got a number with a "
                "fraction"},
        BadCase{"[origin]\nwindow = \"25:00-06:00\"\n",
                "relay.toml:2: origin.window: \"25:00-06:00\": expected \"HH:MM-HH:MM\""},
        BadCase{"[origin]\nmanifest = \"manifest.json\"\n",
                "relay.toml:2: origin.manifest: needs origin.url"},
        BadCase{"[[origin.route]]\nurl = \"https://fw.example/\"\n",
                "relay.toml:1: origin.route[0].match: is required"},
        BadCase{"[[account]]\npassword = \"x\"\n", "relay.toml:1: account[0].user: is required"},
        BadCase{"[[account]]\nuser = \"a\"\n[[account]]\nuser = \"a\"\n",
                "relay.toml:4: account[1].user: \"a\" is defined twice"},
        BadCase{"[[account]]\nuser = \"a\"\nroot = \"/x/../..\"\n",
                "relay.toml:3: account[0].root: \"/x/../..\" must start with '/' and contain no "
                "'.', '..' or '\\'"},
        BadCase{"[ftp]\npassive_ports = [50100, 50000]\n",
                "relay.toml:2: ftp.passive_ports: expected 1 <= low <= high <= 65535"},
        BadCase{"[ftp]\npassive_ports = 50000\n",
                "relay.toml:2: ftp.passive_ports: expected [low, high], two port numbers"},
        BadCase{"[tls]\nmin_version = \"1.4\"\n",
                "relay.toml:2: tls.min_version: \"1.4\" is not one of \"1.0\", \"1.1\", \"1.2\", "
                "\"1.3\""},
        BadCase{"[tls]\ncert = \"/etc/ssl/relay.pem\"\n",
                "relay.toml:2: tls.key: cert and key go together: set both, or neither for a "
                "self-signed certificate"},
        BadCase{"[uploads]\nmax_bytes = 0\n", "relay.toml:2: uploads.max_bytes: must be >= 1, got 0"},
        BadCase{"[logs]\nbatch_bytes = 10\n",
                "relay.toml:2: logs.batch_bytes: must be between 1024 and 4294967296 bytes, got 10"},
        BadCase{"[logs]\nbatch_bytes = 4096\nspool_bytes = 1024\n",
                "relay.toml:3: logs.spool_bytes: must be at least logs.batch_bytes"},
        BadCase{"[logs]\nupstream = \"loki:3100\"\n",
                "relay.toml:2: logs.upstream: \"loki:3100\" is not a URL with scheme http, https"},
        BadCase{"[admin]\nuser = \"\"\n", "relay.toml:2: admin.user: must not be empty"},
        BadCase{"[cache]\nmax_bytes = -5\n", "relay.toml:2: cache.max_bytes: must be >= 0, got -5"},
        BadCase{"http = 5\n", "relay.toml:1: http: expected a table [http], got an integer"},
        BadCase{"[http\n", "relay.toml:1: Error while parsing table header: expected ']', saw '\\n'"}),
    [](const ::testing::TestParamInfo<BadCase>& p) { return "Case" + std::to_string(p.index); });

TEST(ConfigTest, ErrorsQuoteUserTextOnOneLine) {
  // A TOML escape puts a newline (or a terminal escape) in a value; the message stays one line.
  EXPECT_EQ(ErrorOf("[origin]\nurl = \"x\\n\\u001b[31m\"\n"),
            "relay.toml:2: origin.url: \"x\\n\\x1b[31m\" is not a URL with scheme http, https, file");
}

TEST(ConfigTest, RefusesNulInsideAddresses) {
  EXPECT_EQ(ErrorOf("[http]\nlisten = [\"127.0.0.1\\u0000junk:80\"]\n"),
            "relay.toml:2: http.listen[0]: bad address \"127.0.0.1\\x00junk:80\": contains NUL");
  EXPECT_EQ(ErrorOf("[http]\nallow_from = [\"10.0.0.1\\u0000junk\"]\n"),
            "relay.toml:2: http.allow_from[0]: bad address range \"10.0.0.1\\x00junk\": contains "
            "NUL");
}

TEST(ConfigTest, NonAsciiIsFineInStringsAndComments) {
  auto c = ParseConfig(
      "# Zweigstelle Zürich\nrelay_id = \"zh\" # Zürich\n[[account]]\n"
      "user = \"bürö\"\npassword = '''pässwörd'''\nroot = '/é'\n",
      "relay.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->accounts[0].user, "bürö");
  EXPECT_EQ(c->accounts[0].password, "pässwörd");
  EXPECT_EQ(c->accounts[0].root, "/é");
}

TEST(ConfigTest, RefusesNonAsciiWhereTomlxxWouldMisbehave) {
  // Outside strings: toml++ 3.3 reaches __builtin_unreachable on some code points.
  EXPECT_EQ(ErrorOf("data_dir = \"/x\"\n\xc2\xa7 = 1\n"),
            "relay.toml:2: non-ASCII text outside a quoted string or comment");
  EXPECT_EQ(ErrorOf("\xcc\xaa"), "relay.toml:1: non-ASCII text outside a quoted string or comment");
  // After a line-ending backslash in a multi-line basic string (toml++ issue 190).
  EXPECT_EQ(ErrorOf("data_dir = \"\"\"\\\n  \xc2\xa7\"\"\"\n"),
            "relay.toml:2: non-ASCII text outside a quoted string or comment");
}

TEST(ConfigTest, SyntaxErrorNamesFileAndLine) {
  std::string err = ErrorOf("data_dir = \"x\"\n\nrelay_id = \n");
  EXPECT_EQ(err.rfind("relay.toml:3: ", 0), 0u) << err;
}

TEST(ConfigTest, LoadConfigWithoutPathIsDefaults) {
  auto c = LoadConfig("");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->source, "<built-in defaults>");
}

TEST(ConfigTest, LoadConfigReportsMissingFile) {
  auto c = LoadConfig("/nonexistent/siterelay.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "/nonexistent/siterelay.toml: cannot read config file: No such file or directory");
}

TEST(ConfigTest, LoadConfigReportsUnreadableCertificate) {
  testing::TempDir dir;
  testing::WriteFile(dir / "relay.toml",
                     "[tls]\ncert = \"" + (dir / "missing.pem") + "\"\nkey = \"" +
                         (dir / "missing.key") + "\"\n");
  auto c = LoadConfig(dir / "relay.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), (dir / "relay.toml") + ": tls.cert: cannot read \"" +
                                      (dir / "missing.pem") + "\": No such file or directory");
}

TEST(ConfigTest, LoadConfigReadsAFile) {
  testing::TempDir dir;
  testing::WriteFile(dir / "relay.toml", "data_dir = \"/srv/relay\"\n[cache]\nmax_bytes = 1000\n");
  auto c = LoadConfig(dir / "relay.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->data_dir, "/srv/relay");
  EXPECT_EQ(c->cache_max_bytes, 1000u);
}

TEST(ListenAddressTest, RoundTrips) {
  for (const char* s : {"0.0.0.0:8080", "[::]:69", "[::1]:0", "127.0.0.1:65535"}) {
    auto a = ListenAddress::Parse(s);
    ASSERT_TRUE(a.ok()) << s;
    EXPECT_EQ(a->ToString(), s);
  }
}

TEST(CidrTest, MatchesPrefixes) {
  auto c = Cidr::Parse("10.1.0.0/16");
  ASSERT_TRUE(c.ok());
  uint8_t in[4] = {10, 1, 200, 3};
  uint8_t out[4] = {10, 2, 0, 1};
  EXPECT_TRUE(c->Contains(in, false));
  EXPECT_FALSE(c->Contains(out, false));
  uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 9, 9};
  EXPECT_TRUE(c->Contains(mapped, true)) << "IPv4-mapped IPv6 peers match IPv4 ranges";
  auto odd = Cidr::Parse("192.168.1.128/25");
  ASSERT_TRUE(odd.ok());
  uint8_t a129[4] = {192, 168, 1, 129};
  uint8_t a127[4] = {192, 168, 1, 127};
  EXPECT_TRUE(odd->Contains(a129, false));
  EXPECT_FALSE(odd->Contains(a127, false));
  auto any = Cidr::Parse("0.0.0.0/0");
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(any->Contains(a127, false));
}

TEST(TimeWindowTest, WrapsMidnight) {
  auto w = TimeWindow::Parse("22:00-06:00");
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->Contains(23 * 60));
  EXPECT_TRUE(w->Contains(5 * 60 + 59));
  EXPECT_FALSE(w->Contains(6 * 60));
  EXPECT_FALSE(w->Contains(12 * 60));
  auto day = TimeWindow::Parse("09:30-17:00");
  ASSERT_TRUE(day.ok());
  EXPECT_TRUE(day->Contains(9 * 60 + 30));
  EXPECT_FALSE(day->Contains(17 * 60));
  EXPECT_FALSE(TimeWindow::Parse("10:00-10:00").ok());
  EXPECT_TRUE(TimeWindow::Parse("")->Contains(0));
}

}  // namespace
}  // namespace siterelay
