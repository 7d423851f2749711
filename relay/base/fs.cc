#include "relay/base/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace siterelay {
namespace {

class PosixFileSystem final : public FileSystem {
 public:
  Result<int> Open(const std::string& path, int flags, mode_t mode) override {
    int fd;
    do {
      fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return PosixError("open " + path, errno);
    return fd;
  }

  Status WriteAll(int fd, std::span<const uint8_t> data) override {
    while (!data.empty()) {
      ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return PosixError("write", errno);
      }
      data = data.subspan(static_cast<size_t>(n));
    }
    return Status::Ok();
  }

  Result<size_t> Read(int fd, std::span<uint8_t> data) override {
    for (;;) {
      ssize_t n = ::read(fd, data.data(), data.size());
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return PosixError("read", errno);
    }
  }

  Status Fsync(int fd) override {
    if (::fsync(fd) != 0) return PosixError("fsync", errno);
    return Status::Ok();
  }

  Status Truncate(int fd, uint64_t size) override {
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return PosixError("ftruncate", errno);
    return Status::Ok();
  }

  Status SyncFilesystem(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PosixError("open directory " + dir, errno);
    Status s;
    if (::syncfs(fd) != 0) s = PosixError("syncfs " + dir, errno);
    ::close(fd);
    return s;
  }

  Status Close(int fd) override {
    // POSIX leaves the fd state unspecified after EINTR; Linux has closed it, so never retry.
    if (::close(fd) != 0 && errno != EINTR) return PosixError("close", errno);
    return Status::Ok();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return PosixError("rename " + from + " to " + to, errno);
    }
    return Status::Ok();
  }

  Status Unlink(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError("unlink " + path, errno);
    return Status::Ok();
  }

  Status MakeDirs(const std::string& path) override {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return PosixError("mkdir " + path, ec.value());
    return Status::Ok();
  }

  Status FsyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PosixError("open directory " + dir, errno);
    Status s;
    if (::fsync(fd) != 0) s = PosixError("fsync directory " + dir, errno);
    ::close(fd);
    return s;
  }
};

}  // namespace

FileSystem* FileSystem::Default() {
  static PosixFileSystem fs;
  return &fs;
}

Result<std::string> ReadWholeFile(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError("open " + path, errno);
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      if (n < 0) return PosixError("read " + path, err);
      return out;
    }
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      ::close(fd);
      return Status::ResourceExhausted(path + ": larger than " + std::to_string(max_bytes) +
                                       " bytes");
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace siterelay
