#include "relay/base/url.h"

#include <gtest/gtest.h>

namespace siterelay {
namespace {

std::string Dhcp(std::string_view url) {
  auto r = DhcpOptionValue(url);
  return r.ok() ? *r : "error: " + r.status().message();
}

TEST(DhcpOptionTest, LastAtSeparatesCredentials) {
  // The example of the foundation issue and CONTRACT.md.
  EXPECT_EQ(Dhcp("ftp://PlcmSpIp:@123$@10.0.0.5"), "ftp://PlcmSpIp:%40123$@10.0.0.5");
}

TEST(DhcpOptionTest, EncodesBackslashInDomainUser) {
  EXPECT_EQ(Dhcp("https://DOMAIN\\user:pw@relay:8443/path"),
            "https://DOMAIN%5Cuser:pw@relay:8443/path");
}

TEST(DhcpOptionTest, LeavesPlainUrlsAlone) {
  EXPECT_EQ(Dhcp("ftp://PlcmSpIp:PlcmSpIp@10.1.2.3"), "ftp://PlcmSpIp:PlcmSpIp@10.1.2.3");
  EXPECT_EQ(Dhcp("http://10.1.2.3:8080/prov/"), "http://10.1.2.3:8080/prov/");
  EXPECT_EQ(Dhcp("tftp://10.1.2.3"), "tftp://10.1.2.3");
}

TEST(DhcpOptionTest, EncodesReservedCharactersInPassword) {
  EXPECT_EQ(Dhcp("ftp://u:a/b?c#d e@h"), "error: URL contains a space or control character");
  EXPECT_EQ(Dhcp("ftp://u:a/b?c#d@h/x"), "ftp://u:a%2Fb%3Fc%23d@h/x");
  EXPECT_EQ(Dhcp("ftp://u:50%@h"), "ftp://u:50%25@h");
}

TEST(DhcpOptionTest, EscapesWhatAPathCannotCarry) {
  EXPECT_EQ(Dhcp("ftp://h/a\\b"), "ftp://h/a%5Cb");
  EXPECT_EQ(Dhcp("http://relay:8080/prov/%41x"), "http://relay:8080/prov/%41x");
}

TEST(DhcpOptionTest, RefusesAHostThatIsNotOne) {
  EXPECT_EQ(Dhcp("https://[fd00::1\\:8443/"),
            "error: URL host \"[fd00::1\\\\:8443\" is not a host name or address");
  EXPECT_EQ(Dhcp("http://relay:80x/"), "error: URL host \"relay:80x\" is not a host name or address");
  EXPECT_EQ(Dhcp("http://[fd00::1]:8443/p"), "http://[fd00::1]:8443/p");
}

TEST(DhcpOptionTest, IsIdempotent) {
  std::string once = Dhcp("ftp://PlcmSpIp:@123$@10.0.0.5");
  EXPECT_EQ(Dhcp(once), once);
}

TEST(DhcpOptionTest, RejectsWhatIsNotAPhoneUrl) {
  EXPECT_EQ(Dhcp("10.0.0.5"), "error: URL needs a scheme, e.g. ftp://user:password@host");
  EXPECT_EQ(Dhcp("gopher://h/"),
            "error: unsupported scheme 'gopher' (phones use ftp, ftps, tftp, http or https)");
  EXPECT_EQ(Dhcp("ftp://:pw@h"), "error: URL has credentials but no user name");
  EXPECT_EQ(Dhcp("ftp://u:p@/x"), "error: URL has no host");
}

}  // namespace
}  // namespace siterelay
