#include "cache/importer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <filesystem>
#include <memory>
#include <unordered_set>

#include "relay/base/log.h"
#include "relay/base/mime.h"
#include "relay/base/uv.h"

namespace siterelay::cache {
namespace {

namespace fs = std::filesystem;

// Read size per call: large enough that syscalls do not dominate, small enough that the pool's
// threads together stay far below the 64 MiB resident target.
constexpr size_t kCopyBufferBytes = 1 << 20;
// A batch is published once it holds this many files or bytes, so a huge import shows its
// entries progressively and a crash loses at most one batch of work (never consistency).
constexpr size_t kBatchFiles = 256;
constexpr uint64_t kBatchBytes = 256ull << 20;

struct SourceFile {
  std::string path;  // catalog path, '/'-separated, relative to the import root
  std::string file;  // where it is on disk
  uint64_t size = 0;
};

// A path a phone could ask for: printable, no backslash (a traversal vector on some servers).
bool AcceptablePath(const std::string& p) {
  for (char c : p) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\') return false;
  }
  return !p.empty();
}

Status ListFiles(const std::string& dir, std::vector<SourceFile>* out,
                 std::vector<std::string>* skipped) {
  std::error_code ec;
  fs::path root(dir);
  if (!fs::is_directory(root, ec)) {
    return Status::InvalidArgument(dir + " is not a directory");
  }
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) return PosixError("read " + dir, ec.value());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return PosixError("read " + dir, ec.value());
    const fs::directory_entry& e = *it;
    std::string name = e.path().filename().string();
    if (!name.empty() && name.front() == '.') {
      if (e.is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (e.is_symlink(ec) && e.is_directory(ec)) {
      it.disable_recursion_pending();
      skipped->push_back(e.path().string() + ": symlinked folder not followed");
      continue;
    }
    if (e.is_directory(ec)) continue;
    std::string rel = fs::relative(e.path(), root, ec).generic_string();
    if (ec || !e.is_regular_file(ec)) {
      skipped->push_back(e.path().string() + ": not a regular file");
      continue;
    }
    if (!AcceptablePath(rel)) {
      skipped->push_back(e.path().string() + ": name with control characters or backslash");
      continue;
    }
    uint64_t size = e.file_size(ec);
    if (ec) {
      skipped->push_back(e.path().string() + ": " + ec.message());
      continue;
    }
    out->push_back({std::move(rel), e.path().string(), size});
  }
  std::sort(out->begin(), out->end(),
            [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  return Status::Ok();
}

// Copies one file into the store, hashing as it goes. Runs on the thread pool. A failure to read
// the source lands in `source_error` (that file is skipped); a failure of the store itself (disk
// full, I/O error) in the returned status (the import stops).
Result<Digest> CopyIntoStore(ObjectStore& store, const SourceFile& src, std::vector<uint8_t>& buf,
                             uint64_t* copied, Status* source_error) {
  int fd = ::open(src.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *source_error = PosixError("open", errno);
    return *source_error;
  }
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  auto writer = store.Create();
  if (!writer.ok()) {
    ::close(fd);
    return writer.status();
  }
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      *source_error = PosixError("read", errno);
      ::close(fd);
      return *source_error;
    }
    if (n == 0) break;
    Status s = (*writer)->Append(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
    if (!s.ok()) {
      ::close(fd);
      return s;
    }
  }
  ::close(fd);
  *copied = (*writer)->size();
  return (*writer)->Commit();
}

class Importer {
 public:
  Importer(Cache& cache, uv_loop_t* loop, std::vector<SourceFile> files,
           std::vector<std::string> skipped,
           const std::function<void(const ImportProgress&)>& progress)
      : cache_(cache), loop_(loop), files_(std::move(files)), progress_cb_(progress) {
    progress_.files_total = files_.size();
    for (const SourceFile& f : files_) progress_.bytes_total += f.size;
    report_.skipped = std::move(skipped);
  }

  Status Run(ImportReport* report) {
    unsigned workers = std::max(1u, ThreadPoolSize());
    for (unsigned i = 0; i < workers; ++i) buffers_.emplace_back(kCopyBufferBytes);
    for (unsigned i = 0; i < workers && error_.ok(); ++i) StartNext();
    int rc = uv_run(loop_, UV_RUN_DEFAULT);
    if (error_.ok() && rc < 0) error_ = UvError("uv_run", rc);
    Flush();
    *report = std::move(report_);
    return error_;
  }

 private:
  struct Job {
    SourceFile src;
    std::vector<uint8_t> buf;
    Result<Digest> digest = Status::Internal("not run");
    Status source_error;
    uint64_t copied = 0;
  };

  void StartNext() {
    if (next_ >= files_.size() || buffers_.empty()) return;
    auto job = std::make_shared<Job>();  // shared by the work and after closures only
    job->src = files_[next_++];
    job->buf = std::move(buffers_.back());
    buffers_.pop_back();
    ObjectStore* store = &cache_.store();
    Status s = QueueWork(
        loop_, [job, store] {
          job->digest =
              CopyIntoStore(*store, job->src, job->buf, &job->copied, &job->source_error);
        },
        [this, job] { Done(*job); });
    if (!s.ok()) {
      error_ = s;
      buffers_.push_back(std::move(job->buf));
    }
  }

  void Done(Job& job) {
    buffers_.push_back(std::move(job.buf));
    ++progress_.files_done;
    progress_.bytes_done += job.src.size;
    progress_.current = job.src.path;
    if (!job.source_error.ok()) {
      // One unreadable source file is skipped and reported; the rest goes on.
      report_.skipped.push_back(job.src.file + ": " + job.source_error.message());
    } else if (!job.digest.ok()) {
      // The store failed (disk full, I/O error): stop, keeping what was published.
      if (error_.ok()) error_ = job.digest.status().Annotate("import " + job.src.file);
    } else {
      const Digest& d = *job.digest;
      const Entry* old = cache_.Lookup(job.src.path);
      if (old != nullptr && old->sha256 == d && old->source == Source::kImport) {
        ++report_.unchanged;
      }
      if (!cache_.HasObject(d) && known_.insert(d).second) ++report_.new_objects;
      Entry e;
      e.path = job.src.path;
      e.sha256 = d;
      e.size = job.copied;
      e.content_type = std::string(ContentTypeForPath(e.path));
      e.source = Source::kImport;
      e.pinned = true;
      e.forwarded = true;
      batch_bytes_ += e.size;
      batch_.push_back(std::move(e));
      if (batch_.size() >= kBatchFiles || batch_bytes_ >= kBatchBytes) Flush();
    }
    if (progress_cb_) progress_cb_(progress_);
    if (error_.ok()) StartNext();
  }

  void Flush() {
    // Published even after an error: those objects are committed and their entries are good.
  if (batch_.empty()) return;
    size_t n = batch_.size();
    uint64_t bytes = batch_bytes_;
    Status s = cache_.Publish(std::move(batch_));
    batch_.clear();
    batch_bytes_ = 0;
    if (!s.ok()) {
      if (error_.ok()) error_ = s;
      return;
    }
    report_.files += n;
    report_.bytes += bytes;
  }

  Cache& cache_;
  uv_loop_t* loop_;
  std::vector<SourceFile> files_;
  const std::function<void(const ImportProgress&)>& progress_cb_;
  std::vector<std::vector<uint8_t>> buffers_;
  std::unordered_set<Digest, DigestHash> known_;
  size_t next_ = 0;
  ImportProgress progress_;
  ImportReport report_;
  std::vector<Entry> batch_;
  uint64_t batch_bytes_ = 0;
  Status error_;
};

}  // namespace

Result<ImportReport> ImportTree(Cache& cache, uv_loop_t* loop, const std::string& dir,
                                const std::function<void(const ImportProgress&)>& progress) {
  std::vector<SourceFile> files;
  std::vector<std::string> skipped;
  SR_RETURN_IF_ERROR(ListFiles(dir, &files, &skipped));
  Importer importer(cache, loop, std::move(files), std::move(skipped), progress);
  ImportReport report;
  SR_RETURN_IF_ERROR(importer.Run(&report));
  return report;
}

}  // namespace siterelay::cache
