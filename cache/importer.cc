#include "cache/importer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <deque>
#include <filesystem>
#include <memory>
#include <unordered_set>

#include "relay/base/http_date.h"
#include "relay/base/log.h"
#include "relay/base/mime.h"
#include "relay/base/uv.h"

namespace siterelay::cache {
namespace {

namespace fs = std::filesystem;

// A batch is published once it holds this many files or bytes, so a huge import shows its
// entries progressively and a crash loses at most one batch of work (never consistency).
constexpr size_t kBatchFiles = 256;
constexpr uint64_t kBatchBytes = 256ull << 20;

struct SourceFile {
  std::string path;  // catalog path, '/'-separated, relative to the import root
  std::string file;  // where it is on disk
  uint64_t size = 0;
  int64_t mtime = 0;  // served as Last-Modified, as an origin web server would
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
  const size_t root_prefix = root.generic_string().size();
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
    // The iterator builds each path by appending to `dir`, so stripping that prefix is the
    // relative path (fs::relative would resolve every component with readlink and getcwd).
    std::string rel = e.path().generic_string().substr(root_prefix);
    while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
    if (!e.is_regular_file(ec)) {
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
    struct stat st;
    int64_t mtime = ::stat(e.path().c_str(), &st) == 0 ? static_cast<int64_t>(st.st_mtime) : 0;
    out->push_back({std::move(rel), e.path().string(), size, mtime});
  }
  std::sort(out->begin(), out->end(),
            [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  return Status::Ok();
}

// Copies one file into a sealed blob, hashing as it goes. Runs on the thread pool. A failure to
// read the source lands in `source_error` (that file is skipped); a failure of the store itself
// (disk full, I/O error) in the returned status (the import stops).
Result<SealedBlob> CopyIntoStore(ObjectStore& store, const SourceFile& src, Status* source_error) {
  int raw = ::open(src.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    *source_error = PosixError("open", errno);
    return *source_error;
  }
  ScopedFd fd(FileSystem::Default(), raw);
  (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  SR_ASSIGN_OR_RETURN(auto writer, store.Create());
  for (;;) {
    // Read straight into the writer's aligned buffer: no copy in between.
    std::span<uint8_t> room = writer->Space();
    ssize_t n = ::read(fd.get(), room.data(), room.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      *source_error = PosixError("read", errno);
      return *source_error;
    }
    if (n == 0) break;
    SR_RETURN_IF_ERROR(writer->Advance(static_cast<size_t>(n)));
  }
  // Not synced here: the batch's Install() syncs all of its files at once.
  return writer->Seal(nullptr, /*sync=*/false);
}

// Runs the import as a pipeline on one loop: up to ThreadPoolSize() files are copied at a time;
// finished files gather into a batch; each full batch is installed (one syncfs, renames) on the
// pool while copying goes on, then published from the loop thread. One install at a time keeps
// batches in order.
class Importer {
 public:
  Importer(Cache& cache, uv_loop_t* loop, std::vector<SourceFile> files,
           std::vector<std::string> skipped,
           const std::function<void(const ImportProgress&)>& progress)
      : cache_(cache),
        loop_(loop),
        files_(std::move(files)),
        progress_cb_(progress),
        now_(static_cast<int64_t>(std::time(nullptr))) {
    progress_.files_total = files_.size();
    for (const SourceFile& f : files_) progress_.bytes_total += f.size;
    report_.skipped = std::move(skipped);
  }

  Status Run(ImportReport* report) {
    unsigned workers = std::max(1u, ThreadPoolSize());
    for (unsigned i = 0; i < workers && error_.ok(); ++i) StartNext();
    if (in_flight_ == 0) CloseBatch();  // nothing to copy at all
    int rc = uv_run(loop_, UV_RUN_DEFAULT);
    if (error_.ok() && rc < 0) error_ = UvError("uv_run", rc);
    *report = std::move(report_);
    return error_;
  }

 private:
  struct Job {
    SourceFile src;
    Result<SealedBlob> blob = Status::Internal("not run");
    Status source_error;
  };

  struct Batch {
    std::vector<SealedBlob> blobs;
    std::vector<Entry> entries;
    uint64_t bytes = 0;
  };

  void StartNext() {
    if (next_ >= files_.size() || !error_.ok()) return;
    auto job = std::make_shared<Job>();  // shared by the work and after closures only
    job->src = files_[next_++];
    ObjectStore* store = &cache_.store();
    Status s = QueueWork(
        loop_, [job, store] { job->blob = CopyIntoStore(*store, job->src, &job->source_error); },
        [this, job] { Done(*job); });
    if (s.ok()) {
      ++in_flight_;
    } else {
      error_ = s;
    }
  }

  void Done(Job& job) {
    --in_flight_;
    ++progress_.files_done;
    progress_.bytes_done += job.src.size;
    progress_.current = job.src.path;
    if (!job.source_error.ok()) {
      // One unreadable source file is skipped and reported; the rest goes on.
      report_.skipped.push_back(job.src.file + ": " + job.source_error.message());
    } else if (!job.blob.ok()) {
      // The store failed (disk full, I/O error): stop, keeping what was published.
      if (error_.ok()) error_ = job.blob.status().Annotate("import " + job.src.file);
    } else {
      const SealedBlob& blob = *job.blob;
      const Entry* old = cache_.Lookup(job.src.path);
      if (old != nullptr && old->sha256 == blob.digest && old->source == Source::kImport) {
        ++report_.unchanged;
      }
      if (!cache_.HasObject(blob.digest) && known_.insert(blob.digest).second) {
        ++report_.new_objects;
      }
      Entry e;
      e.path = job.src.path;
      e.sha256 = blob.digest;
      e.size = blob.size;
      e.content_type = std::string(ContentTypeForPath(e.path));
      e.source = Source::kImport;
      e.pinned = true;
      e.fetched_at = now_;
      if (job.src.mtime > 0) e.last_modified = FormatHttpDate(job.src.mtime);
      e.forwarded = true;
      batch_.bytes += e.size;
      batch_.entries.push_back(std::move(e));
      batch_.blobs.push_back(blob);
      if (batch_.entries.size() >= kBatchFiles || batch_.bytes >= kBatchBytes) CloseBatch();
    }
    if (progress_cb_) progress_cb_(progress_);
    StartNext();
    if (in_flight_ == 0) CloseBatch();  // the last file, or an error stopped new ones
  }

  void CloseBatch() {
    if (batch_.entries.empty()) return;
    pending_.push_back(std::move(batch_));
    batch_ = Batch();
    MaybeInstall();
  }

  void MaybeInstall() {
    if (installing_ || pending_.empty()) return;
    installing_ = true;
    auto batch = std::make_shared<Batch>(std::move(pending_.front()));
    pending_.pop_front();
    auto status = std::make_shared<Status>();
    if (!install_error_.ok()) {
      // An earlier install failed: nothing more is installed; the temp files go.
      for (const SealedBlob& b : batch->blobs) (void)cache_.store().fs()->Unlink(b.tmp_path);
      installing_ = false;
      MaybeInstall();
      return;
    }
    ObjectStore* store = &cache_.store();
    Status s = QueueWork(
        loop_, [batch, store, status] { *status = store->Install(batch->blobs, false); },
        [this, batch, status] { Installed(*batch, *status); });
    if (!s.ok()) {
      installing_ = false;
      install_error_ = s;
      if (error_.ok()) error_ = s;
    }
  }

  void Installed(Batch& batch, const Status& status) {
    installing_ = false;
    Status s = status;
    if (s.ok()) s = cache_.Publish(std::move(batch.entries));
    if (s.ok()) {
      report_.files += batch.blobs.size();
      report_.bytes += batch.bytes;
    } else {
      install_error_ = s;
      if (error_.ok()) error_ = s;
    }
    MaybeInstall();
  }

  Cache& cache_;
  uv_loop_t* loop_;
  std::vector<SourceFile> files_;
  const std::function<void(const ImportProgress&)>& progress_cb_;
  int64_t now_;
  std::unordered_set<Digest, DigestHash> known_;
  size_t next_ = 0;
  size_t in_flight_ = 0;
  ImportProgress progress_;
  ImportReport report_;
  Batch batch_;
  std::deque<Batch> pending_;
  bool installing_ = false;
  Status install_error_;
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
