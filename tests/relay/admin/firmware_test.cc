#include "relay/admin/firmware.h"

#include <gtest/gtest.h>

#include "tests/testing/cache.h"
#include "tests/testing/temp_dir.h"

namespace siterelay::admin {
namespace {

class FirmwareExpectationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = testing::OpenTestCache(dir_.path(), &clock_);
    files_ = std::make_unique<files::FileService>(Config::Defaults(), cache_.get(), &clock_);
  }

  void Put(const std::string& path, std::string_view content) {
    cache::Entry e;
    e.path = path;
    testing::PutFile(cache_.get(), e, content);
  }

  static files::Device Phone(std::string mac, std::string model) {
    files::Device d;
    d.mac = std::move(mac);
    d.model = std::move(model);
    return d;
  }

  testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<cache::Cache> cache_;
  std::unique_ptr<files::FileService> files_;
};

TEST_F(FirmwareExpectationsTest, NothingCachedMeansUnknown) {
  FirmwareExpectations f(files_.get());
  EXPECT_EQ(f.For(Phone("0004f282e824", "VVX_500")), "");
  Put("000000000000.cfg", "not xml at all");
  EXPECT_EQ(f.For(Phone("0004f282e824", "VVX_500")), "");
}

TEST_F(FirmwareExpectationsTest, TheVersionInTheImagePathPerModel) {
  Put("000000000000.cfg",
      R"(<APPLICATION APP_FILE_PATH="fw/5.9.7.47435/sip.ld">)"
      R"(<APPLICATION_VVX410 APP_FILE_PATH_VVX410="fw/6.4.0.1/sip.ld"/></APPLICATION>)");
  FirmwareExpectations f(files_.get());
  EXPECT_EQ(f.For(Phone("0004f282e824", "VVX_500")), "5.9.7.47435");
  EXPECT_EQ(f.For(Phone("0004f282e825", "VVX_410")), "6.4.0.1");
}

TEST_F(FirmwareExpectationsTest, APhonesOwnConfigWins) {
  Put("000000000000.cfg", R"(<APPLICATION APP_FILE_PATH="fw/5.9.7/sip.ld"/>)");
  Put("0004f282e824.cfg", R"(<APPLICATION APP_FILE_PATH="fw/6.4.0/sip.ld"/>)");
  FirmwareExpectations f(files_.get());
  EXPECT_EQ(f.For(Phone("0004f282e824", "VVX_500")), "6.4.0");
  EXPECT_EQ(f.For(Phone("0004f2000001", "VVX_500")), "5.9.7");
}

TEST_F(FirmwareExpectationsTest, ElseTheVersionFileNextToTheImage) {
  Put("000000000000.cfg", R"(<APPLICATION APP_FILE_PATH="fw/sip.ld"/>)");
  FirmwareExpectations f(files_.get());
  EXPECT_EQ(f.For(Phone("0004f282e824", "VVX_500")), "") << "no sip.ver yet";
  Put("fw/sip.ver", "5.9.7.47435\n");
  EXPECT_EQ(f.For(Phone("0004f282e824", "VVX_500")), "5.9.7.47435");
  Put("fw/sip.ver", "6.4.2.100 (release)\n");  // replaced: read again
  EXPECT_EQ(f.For(Phone("0004f282e824", "VVX_500")), "6.4.2.100");
  Put("000000000000.cfg", R"(<APPLICATION APP_FILE_PATH="http://10.1.2.3/sip.ld"/>)");
  EXPECT_EQ(f.For(Phone("0004f282e824", "VVX_500")), "")
      << "a URL elsewhere: its sip.ver is not ours, and a host is no version";
}

}  // namespace
}  // namespace siterelay::admin
