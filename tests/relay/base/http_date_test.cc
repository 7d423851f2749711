#include "relay/base/http_date.h"

#include <gtest/gtest.h>

namespace siterelay {
namespace {

TEST(HttpDateTest, FormatsAndParsesAllThreeForms) {
  EXPECT_EQ(FormatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
  EXPECT_EQ(ParseHttpDate("Sun Nov  6 08:49:37 1994"), 784111777);
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 UTC"), std::nullopt);
  EXPECT_EQ(ParseHttpDate("Sun, 06 Foo 1994 08:49:37 GMT"), std::nullopt);
  EXPECT_EQ(ParseHttpDate("yesterday"), std::nullopt);
  // Found by http_fields_fuzz: a leap second rolling into year 10000 cannot be formatted back.
  EXPECT_EQ(ParseHttpDate("Fri, 31 Dec 9999 23:59:60 GMT"), std::nullopt);
  EXPECT_EQ(ParseHttpDate("Fri, 31 Dec 9999 23:59:59 GMT"), 253402300799);
}

}  // namespace
}  // namespace siterelay
