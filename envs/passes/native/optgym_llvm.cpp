// OptGym's LLVM worker: one process that holds one module, runs new-pass-manager pipelines
// on it and computes observations, serving OptGym's pass-ordering env over a Unix socket.
//
// Built on first use by optgym.envs.passes.native against Debian's libLLVM-19 and its
// headers (package llvm-19-dev), and started from a sealed in-memory copy of the checked
// executable. A crash in LLVM (an abort, a fatal error) ends only this process.
//
// Why a process of its own in C++: per step the env sends one fixed-size request and gets
// one reply, with no interpreter, no pickle and no per-step pass-builder set-up on this
// side. The PassBuilder, its four analysis managers and the standard instrumentations live
// as long as the module; every cached analysis is dropped before and after each step, so a
// step computes exactly what LLVMRunPasses (a fresh PassBuilder per call) computes, and
// what `opt-19 -passes='...,invalidate<all>,...'` computes.
//
// Protocol (little-endian, fixed structs): a request is {u32 command, u32 argument, u64
// payload length} and its payload; a reply is {i32 status, u32 observation mask, u64 payload
// length, u64 nanoseconds spent here} and its payload. Observations come in mask-bit order:
// fixed-size ones as raw int64s, variable ones as {u64 length} and the bytes.
//
// Modes: `optgym-llvm-worker FD` serves the socket FD; `optgym-llvm-worker --profile FILE N`
// reads pipelines (one per line) from stdin, runs them in order on FILE N times in this one
// process, and prints the time of each part of a step (the env's floor: no IPC).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Core.h>
#include <llvm-c/IRReader.h>
#include <llvm-c/Object.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>

#include <llvm/ADT/DenseMap.h>
#include <llvm/IR/CFG.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/Function.h>
#include <llvm/IR/InstrTypes.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Passes/StandardInstrumentations.h>
#include <llvm/Support/Error.h>
#include <llvm/Target/TargetMachine.h>

using namespace llvm;

namespace {

constexpr int kInstCountDim = 70;
constexpr int kAutophaseDim = 56;

// Commands and observation bits: optgym/envs/passes/backend.py holds the same numbers.
enum Command : uint32_t {
  kLoad = 1,       // argument: 1 for IR text; payload: the program
  kRun = 2,        // argument: observation mask; payload: a pipeline ("" runs nothing)
  kReference = 3,  // argument: mask; payload: a pipeline run on a fresh parse of the program
  kFork = 4,       // a socket in the message's ancillary data: serve it from a copy
  kTry = 5,        // argument: mask; payload: u64 time limit in ns (0: none), then
                   // NUL-separated pipelines, each run on a copy
  kVersion = 6,
  kClose = 7,
  kStatus = 8,  // payload: the pid of a copy made by kFork; reply: its wait status
};
enum Observation : uint32_t {
  kIrInstructionCount = 1,
  kInstCount = 2,
  kAutophase = 4,
  kIr = 8,
  kBitcode = 16,
  kObjectTextSizeBytes = 32,
  kProgramGraph = 64,
  kAllObservations = 127,
};
enum Status : int32_t { kOk = 0, kError = 1, kCrashed = 2, kTimedOut = 3 };

struct Request {
  uint32_t command;
  uint32_t argument;
  uint64_t length;
};
struct Reply {
  int32_t status;
  uint32_t mask;
  uint64_t length;
  uint64_t nanoseconds;
};
static_assert(sizeof(Request) == 16 && sizeof(Reply) == 24, "wire structs are packed");

uint64_t now_ns() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

// ---- the module and its pass machinery ---------------------------------------------------

// The pass builder, its analysis managers and instrumentations, built once per module in
// the order (and destroyed in the reverse order) LLVMRunPasses uses for one call.
struct PassMachinery {
  PassInstrumentationCallbacks PIC;
  PassBuilder PB;
  LoopAnalysisManager LAM;
  FunctionAnalysisManager FAM;
  CGSCCAnalysisManager CGAM;
  ModuleAnalysisManager MAM;
  StandardInstrumentations SI;

  PassMachinery(LLVMContext &Ctx, TargetMachine *TM)
      : PB(TM, PipelineTuningOptions(), std::nullopt, &PIC),
        SI(Ctx, /*DebugLogging=*/false, /*VerifyEach=*/false) {
    PB.registerLoopAnalyses(LAM);
    PB.registerFunctionAnalyses(FAM);
    PB.registerCGSCCAnalyses(CGAM);
    PB.registerModuleAnalyses(MAM);
    PB.crossRegisterProxies(LAM, FAM, CGAM, MAM);
    SI.registerCallbacks(PIC, &MAM);
  }

  // Every cached analysis result goes, innermost first; the registered analyses stay.
  void forget() {
    LAM.clear();
    FAM.clear();
    CGAM.clear();
    MAM.clear();
  }
};

struct Program {
  LLVMContextRef ctx = nullptr;
  LLVMModuleRef mod = nullptr;
  LLVMTargetMachineRef tm = nullptr;  // from the module's triple, as opt builds it
  std::unique_ptr<PassMachinery> passes;
  std::string diag;  // the last error-severity diagnostic of the context

  ~Program() {
    passes.reset();  // analyses refer to the module: they go first
    if (tm) LLVMDisposeTargetMachine(tm);
    if (mod) LLVMDisposeModule(mod);
    if (ctx) LLVMContextDispose(ctx);
  }
  Module &module() { return *unwrap(mod); }
};

std::string g_error;  // why the last call failed

void diag_handler(LLVMDiagnosticInfoRef info, void *opaque) {
  if (LLVMGetDiagInfoSeverity(info) != LLVMDSError) return;
  char *desc = LLVMGetDiagInfoDescription(info);
  static_cast<Program *>(opaque)->diag = desc;
  LLVMDisposeMessage(desc);
}

LLVMTargetMachineRef make_target_machine(const char *triple) {
  LLVMTargetRef target;
  char *err = nullptr;
  if (LLVMGetTargetFromTriple(triple, &target, &err)) {
    g_error = err ? err : "unknown target";
    LLVMDisposeMessage(err);
    return nullptr;
  }
  return LLVMCreateTargetMachine(target, triple, "", "", LLVMCodeGenLevelDefault,
                                 LLVMRelocDefault, LLVMCodeModelDefault);
}

// Parse bitcode or IR text and verify it; nullptr (and g_error) on failure.
std::unique_ptr<Program> parse(const char *data, size_t len, bool is_text) {
  auto p = std::make_unique<Program>();
  p->ctx = LLVMContextCreate();
  LLVMContextSetDiagnosticHandler(p->ctx, diag_handler, p.get());
  LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(data, len, "input");
  if (is_text) {
    char *err = nullptr;
    if (LLVMParseIRInContext(p->ctx, buf, &p->mod, &err)) {  // takes ownership of buf
      g_error = err ? err : "cannot parse LLVM IR text";
      if (err) LLVMDisposeMessage(err);
      p->mod = nullptr;
      return nullptr;
    }
  } else {
    LLVMBool failed = LLVMParseBitcodeInContext2(p->ctx, buf, &p->mod);
    LLVMDisposeMemoryBuffer(buf);
    if (failed) {
      g_error = p->diag.empty() ? "not a valid LLVM bitcode file" : p->diag;
      p->mod = nullptr;
      return nullptr;
    }
  }
  char *verr = nullptr;
  if (LLVMVerifyModule(p->mod, LLVMReturnStatusAction, &verr)) {
    g_error = verr ? verr : "the module does not verify";
    LLVMDisposeMessage(verr);
    return nullptr;
  }
  if (verr) LLVMDisposeMessage(verr);
  const char *triple = LLVMGetTarget(p->mod);
  if (triple && triple[0]) p->tm = make_target_machine(triple);  // none: generic TTI, as opt
  p->passes = std::make_unique<PassMachinery>(
      *unwrap(p->ctx), reinterpret_cast<TargetMachine *>(p->tm));
  return p;
}

// Run a pipeline with no analysis cached before or after it. false (and g_error) on error.
bool run(Program &p, const std::string &pipeline) {
  PassMachinery &m = *p.passes;
  p.diag.clear();
  m.forget();
  ModulePassManager MPM;
  if (Error err = m.PB.parsePassPipeline(MPM, pipeline)) {
    g_error = toString(std::move(err));
    return false;
  }
  MPM.run(p.module(), m.MAM);
  m.forget();
  if (!p.diag.empty()) {
    g_error = p.diag;
    return false;
  }
  return true;
}

// ---- observations ------------------------------------------------------------------------

// An opcode's place in llvm/IR/Instruction.def (Ret = 0 ... Freeze = 66): the order of
// CompilerGym's InstCount vector after its three totals.
static_assert(Instruction::Ret == 1 && Instruction::FNeg == 12 && Instruction::Add == 13 &&
                  Instruction::Alloca == 31 && Instruction::Trunc == 38 &&
                  Instruction::CleanupPad == 51 && Instruction::ICmp == 53 &&
                  Instruction::Freeze == 67,
              "LLVM's opcode numbering changed: update the InstCount order");
inline int opcode_index(const Instruction &I) { return (int)I.getOpcode() - 1; }

int64_t inst_count(Program &p) {
  int64_t n = 0;
  for (Function &F : p.module())
    for (BasicBlock &B : F) n += (int64_t)B.size();
  return n;
}

// InstCount (70: TotalInsts, TotalBlocks, TotalFuncs, then one count per opcode) and the 56
// Autophase features, in one walk over the module. The definitions follow the Autophase
// paper's feature list as CompilerGym documents it; every function, declarations included,
// counts towards TotalFuncs.
void features(Program &p, int64_t *ic, int64_t *ap) {
  memset(ic, 0, sizeof(int64_t) * kInstCountDim);
  memset(ap, 0, sizeof(int64_t) * kAutophaseDim);
  enum {
    BBNumArgsHi, BBNumArgsLo, onePred, onePredOneSuc, onePredTwoSuc, oneSuccessor, twoPred,
    twoPredOneSuc, twoEach, twoSuccessor, morePreds, BB03Phi, BBHiPhi, BBNoPhi, BeginPhi,
    BranchCount, returnInt, CriticalCount, NumEdges, const32Bit, const64Bit, numConstZeroes,
    numConstOnes, UncondBranches, binaryConstArg, NumAShrInst, NumAddInst, NumAllocaInst,
    NumAndInst, BlockMid, BlockLow, NumBitCastInst, NumBrInst, NumCallInst,
    NumGetElementPtrInst, NumICmpInst, NumLShrInst, NumLoadInst, NumMulInst, NumOrInst,
    NumPHIInst, NumRetInst, NumSExtInst, NumSelectInst, NumShlInst, NumStoreInst, NumSubInst,
    NumTruncInst, NumXorInst, NumZExtInst, TotalBlocks, TotalInsts, TotalMemInst, TotalFuncs,
    ArgsPhi, testUnary
  };
  for (Function &F : p.module()) {
    ic[2]++;
    ap[TotalFuncs]++;
    for (BasicBlock &B : F) {
      ic[1]++;
      ap[TotalBlocks]++;
      const Instruction *t = B.getTerminator();
      unsigned ns = t ? t->getNumSuccessors() : 0;
      // predecessors with multiplicity, as LLVM's pred_iterator sees them
      int64_t np = std::distance(pred_begin(&B), pred_end(&B));
      for (unsigned s = 0; s < ns; ++s) {
        ap[NumEdges]++;
        if (ns > 1) {
          BasicBlock *succ = t->getSuccessor(s);
          if (std::distance(pred_begin(succ), pred_end(succ)) > 1) ap[CriticalCount]++;
        }
      }
      if (ns == 1) ap[oneSuccessor]++;
      else if (ns == 2) ap[twoSuccessor]++;
      if (np == 1) ap[onePred]++;
      else if (np == 2) ap[twoPred]++;
      else if (np > 2) ap[morePreds]++;
      if (np == 1 && ns == 1) ap[onePredOneSuc]++;
      else if (np == 2 && ns == 1) ap[twoPredOneSuc]++;
      else if (np == 1 && ns == 2) ap[onePredTwoSuc]++;
      else if (np == 2 && ns == 2) ap[twoEach]++;

      int64_t count = 0, phis = 0, bbargs = 0;
      bool first = true;
      for (Instruction &I : B) {
        unsigned op = I.getOpcode();
        ic[0]++;
        ic[3 + opcode_index(I)]++;
        if (auto *br = dyn_cast<BranchInst>(&I)) {
          ap[BranchCount]++;
          if (!br->isConditional()) ap[UncondBranches]++;
        }
        for (const Use &U : I.operands()) {
          auto *c = dyn_cast_or_null<ConstantInt>(U.get());
          if (!c) continue;
          unsigned w = c->getBitWidth();
          if (w == 32) ap[const32Bit]++;
          else if (w == 64) ap[const64Bit]++;
          if (c->isOne()) ap[numConstOnes]++;
          else if (c->isZero()) ap[numConstZeroes]++;
        }
        if (op == Instruction::Call) {
          if (auto *callee = dyn_cast_or_null<Function>(cast<CallInst>(I).getCalledOperand()))
            if (callee->getFunctionType()->getReturnType()->isIntegerTy()) ap[returnInt]++;
        }
        if (isa<UnaryInstruction>(I)) ap[testUnary]++;
        if (isa<BinaryOperator>(I) &&
            (isa<Constant>(I.getOperand(0)) || isa<Constant>(I.getOperand(1))))
          ap[binaryConstArg]++;
        if (auto *phi = dyn_cast<PHINode>(&I)) {
          if (first) ap[BeginPhi]++;
          phis++;
          int64_t inc = phi->getNumIncomingValues();
          ap[ArgsPhi] += inc;
          bbargs += inc;
        }
        first = false;
        count++;
      }
      if (phis == 0) ap[BBNoPhi]++;
      else if (phis <= 3) ap[BB03Phi]++;
      else ap[BBHiPhi]++;
      if (bbargs > 5) ap[BBNumArgsHi]++;
      else if (bbargs >= 1) ap[BBNumArgsLo]++;
      if (count < 15) ap[BlockLow]++;
      else if (count <= 500) ap[BlockMid]++;
    }
  }
  auto n = [&](unsigned opcode) { return ic[3 + opcode - 1]; };
  ap[NumAShrInst] = n(Instruction::AShr);
  ap[NumAddInst] = n(Instruction::Add);
  ap[NumAllocaInst] = n(Instruction::Alloca);
  ap[NumAndInst] = n(Instruction::And);
  ap[NumBitCastInst] = n(Instruction::BitCast);
  ap[NumBrInst] = n(Instruction::Br);
  ap[NumCallInst] = n(Instruction::Call);
  ap[NumGetElementPtrInst] = n(Instruction::GetElementPtr);
  ap[NumICmpInst] = n(Instruction::ICmp);
  ap[NumLShrInst] = n(Instruction::LShr);
  ap[NumLoadInst] = n(Instruction::Load);
  ap[NumMulInst] = n(Instruction::Mul);
  ap[NumOrInst] = n(Instruction::Or);
  ap[NumPHIInst] = n(Instruction::PHI);
  ap[NumRetInst] = n(Instruction::Ret);
  ap[NumSExtInst] = n(Instruction::SExt);
  ap[NumSelectInst] = n(Instruction::Select);
  ap[NumShlInst] = n(Instruction::Shl);
  ap[NumStoreInst] = n(Instruction::Store);
  ap[NumSubInst] = n(Instruction::Sub);
  ap[NumTruncInst] = n(Instruction::Trunc);
  ap[NumXorInst] = n(Instruction::Xor);
  ap[NumZExtInst] = n(Instruction::ZExt);
  ap[TotalInsts] = ic[0];
  // memory instructions: GEP, load, store, call, invoke, alloca
  ap[TotalMemInst] = n(Instruction::GetElementPtr) + n(Instruction::Load) +
                     n(Instruction::Store) + n(Instruction::Call) + n(Instruction::Invoke) +
                     n(Instruction::Alloca);
}

// Size in bytes of the .text sections of the module's object code (codegen at -O2, llc's
// default); -1 (and g_error) on failure. Codegen rewrites the IR: run it in a copy.
int64_t text_size(Program &p) {
  LLVMTargetMachineRef tm = p.tm;
  char *err = nullptr;
  if (!tm) {
    char *triple = LLVMGetDefaultTargetTriple();
    tm = make_target_machine(triple);
    LLVMSetTarget(p.mod, triple);
    LLVMDisposeMessage(triple);
    if (!tm) return -1;
  }
  LLVMMemoryBufferRef obj = nullptr;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, p.mod, LLVMObjectFile, &err, &obj)) {
    g_error = err ? err : "code generation failed";
    LLVMDisposeMessage(err);
    return -1;
  }
  LLVMBinaryRef bin = LLVMCreateBinary(obj, p.ctx, &err);
  if (!bin) {
    g_error = err ? err : "cannot read the object code";
    LLVMDisposeMessage(err);
    LLVMDisposeMemoryBuffer(obj);
    return -1;
  }
  int64_t size = 0;
  LLVMSectionIteratorRef it = LLVMObjectFileCopySectionIterator(bin);
  while (!LLVMObjectFileIsSectionIteratorAtEnd(bin, it)) {
    const char *name = LLVMGetSectionName(it);
    if (name && strncmp(name, ".text", 5) == 0) size += (int64_t)LLVMGetSectionSize(it);
    LLVMMoveToNextSection(it);
  }
  LLVMDisposeSectionIterator(it);
  LLVMDisposeBinary(bin);
  LLVMDisposeMemoryBuffer(obj);
  return size;
}

// A ProGraML-style program graph. Nodes {kind, text, function}: 0 = instruction (text = its
// InstCount opcode index), 1 = variable (an instruction's result, an argument or a global
// variable; text = LLVM-C type kind), 2 = constant (text = type kind, function -1). Edges
// {source, target, flow, position}: flow 0 = control, 1 = data, 2 = call.
struct Graph {
  std::vector<int64_t> nodes, edges;
  DenseMap<const Value *, int64_t> values;

  int64_t node(int64_t kind, int64_t text, int64_t fn) {
    nodes.insert(nodes.end(), {kind, text, fn});
    return (int64_t)nodes.size() / 3 - 1;
  }
  void edge(int64_t src, int64_t dst, int64_t flow, int64_t pos) {
    edges.insert(edges.end(), {src, dst, flow, pos});
  }
  int64_t value_node(const Value *v, int64_t fn) {
    auto it = values.find(v);
    if (it != values.end()) return it->second;
    int64_t kind = (isa<Constant>(v) && !isa<GlobalVariable>(v)) ? 2 : 1;
    int64_t text = LLVMGetTypeKind(wrap(v->getType()));
    int64_t id = node(kind, text, kind == 2 ? -1 : fn);
    values[v] = id;
    return id;
  }
};

Graph program_graph(Program &p) {
  Graph g;
  DenseMap<const Instruction *, int64_t> insts;
  DenseMap<const Function *, int64_t> entries;
  int64_t fn = 0;
  for (Function &F : p.module()) {  // an instruction node per instruction, in module order
    for (BasicBlock &B : F)
      for (Instruction &I : B) {
        int64_t id = g.node(0, opcode_index(I), fn);
        insts[&I] = id;
        if (!entries.count(&F)) entries[&F] = id;
      }
    ++fn;
  }
  fn = 0;
  for (Function &F : p.module()) {  // control, data and call edges
    for (BasicBlock &B : F)
      for (Instruction &I : B) {
        int64_t id = insts[&I];
        if (const Instruction *next = I.getNextNode()) g.edge(id, insts[next], 0, 0);
        if (I.isTerminator())
          for (unsigned s = 0, ns = I.getNumSuccessors(); s < ns; ++s) {
            BasicBlock *succ = I.getSuccessor(s);
            if (!succ->empty()) g.edge(id, insts[&succ->front()], 0, (int64_t)s);
          }
        const Value *callee = nullptr;
        if (auto *call = dyn_cast<CallBase>(&I)) {
          if (auto *f = dyn_cast_or_null<Function>(call->getCalledOperand())) {
            callee = f;
            auto entry = entries.find(f);
            if (entry != entries.end()) g.edge(id, entry->second, 2, 0);
            for (const BasicBlock &cb : *f)  // the callee's returns flow back to the call
              if (const Instruction *t = cb.getTerminator())
                if (isa<ReturnInst>(t)) g.edge(insts[t], id, 2, 0);
          }
        }
        for (unsigned k = 0, nops = I.getNumOperands(); k < nops; ++k) {
          const Value *v = I.getOperand(k);
          if (!v || v == callee || isa<BasicBlock>(v)) continue;
          if (isa<Instruction>(v) || isa<Argument>(v) || isa<Constant>(v))
            g.edge(g.value_node(v, fn), id, 1, k);
        }
        if (!I.getType()->isVoidTy()) g.edge(id, g.value_node(&I, fn), 1, 0);
      }
    ++fn;
  }
  return g;
}

// ---- the channel -------------------------------------------------------------------------

// Spin-wait only while the machine has a core to spare: a waiter that polls keeps its core
// awake (a wake-up from sleep costs tens of microseconds on a VM), but when other processes
// are runnable it would take their core, so it sleeps in the kernel instead.
int g_loadavg = -1;
long g_cpus = 1;

bool spare_core() {
  char buf[128];
  ssize_t n = g_loadavg >= 0 ? pread(g_loadavg, buf, sizeof buf - 1, 0) : -1;
  if (n <= 0) return false;
  buf[n] = 0;
  const char *field = buf;  // "0.50 0.40 0.30 RUNNING/TOTAL LASTPID"
  for (int i = 0; i < 3 && field; ++i) {
    field = strchr(field, ' ');
    if (field) ++field;
  }
  if (!field) return false;
  long running = strtol(field, nullptr, 10);  // this process among them
  return running <= g_cpus;
}

// Ask the scheduler for short time slices (Linux 6.12 and later, EEVDF: sched_runtime of a
// normal task is its slice): a worker that wakes for a request then runs before a CPU-bound
// process finishes its slice, as an interactive task does, while its share of the CPU stays
// the same. Older kernels ignore the field for normal tasks.
void prefer_short_slices() {
  struct {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
  } attr = {};
  // The policy and niceness stay as inherited; only the slice changes.
  if (syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) != 0) return;
  if (attr.policy != SCHED_OTHER) return;
  attr.size = sizeof attr;
  attr.runtime = 100000;  // ns: the shortest slice the kernel grants
  syscall(SYS_sched_setattr, 0, &attr, 0);
}

// Tell the CPU this is a polling loop (it then yields resources to a sibling thread).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

constexpr uint64_t kSpinNs = 2000000;      // how long to poll for the next request
constexpr uint64_t kRecheckNs = 250000;    // how often a poll asks again for a spare core

struct Channel {
  int fd;

  // Up to n bytes with recvmsg, a passed descriptor kept in *fd_out; 0 at end of file, -1
  // with errno set on error.
  ssize_t receive_some(char *p, size_t n, int flags, int *fd_out) {
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {p, n};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t got = recvmsg(fd, &msg, flags | MSG_CMSG_CLOEXEC);
    if (got > 0)
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
          if (*fd_out >= 0) close(*fd_out);
          memcpy(fd_out, CMSG_DATA(c), sizeof(int));
        }
    return got;
  }

  // Exactly n bytes; the wait for the first may spin (see spare_core). false at end of file.
  bool read_exact(char *p, size_t n, bool may_spin, int *fd_out) {
    uint64_t start = now_ns();
    uint64_t spin_until = may_spin && spare_core() ? start + kSpinNs : 0;
    uint64_t recheck = start + kRecheckNs;
    while (n > 0) {
      ssize_t got = receive_some(p, n, spin_until ? MSG_DONTWAIT : 0, fd_out);
      if (got > 0) {
        p += got;
        n -= (size_t)got;
        spin_until = 0;
        continue;
      }
      if (got == 0) return false;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        uint64_t t = now_ns();
        if (t > spin_until) {
          spin_until = 0;
        } else if (t > recheck) {  // someone else may want the core by now
          recheck = t + kRecheckNs;
          if (!spare_core()) spin_until = 0;
        }
        cpu_relax();
        continue;
      }
      return false;
    }
    return true;
  }

  // A request and its payload; the descriptor that came with it in *fd_out (or -1).
  bool receive(Request &req, std::string &payload, int *fd_out) {
    *fd_out = -1;
    if (!read_exact(reinterpret_cast<char *>(&req), sizeof req, true, fd_out)) return false;
    if (req.length > (uint64_t)1 << 34) return false;  // not from our client
    payload.resize(req.length);
    return read_exact(payload.data(), req.length, false, fd_out);
  }

  bool write_all(const char *p, size_t n) {
    while (n > 0) {
      ssize_t sent = send(fd, p, n, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      p += sent;
      n -= (size_t)sent;
    }
    return true;
  }
};

// A reply: its header, then the payload, in one buffer.
struct Out {
  std::string bytes = std::string(sizeof(Reply), '\0');

  void raw(const void *p, size_t n) { bytes.append(static_cast<const char *>(p), n); }
  void i64(int64_t v) { raw(&v, sizeof v); }
  void blob(const char *p, uint64_t n) {
    raw(&n, sizeof n);
    raw(p, n);
  }
  void finish(int32_t status, uint32_t mask, uint64_t start) {
    Reply r = {status, mask, bytes.size() - sizeof(Reply), now_ns() - start};
    memcpy(bytes.data(), &r, sizeof r);
  }
  void error(const std::string &message) {
    bytes.resize(sizeof(Reply));
    raw(message.data(), message.size());
  }
};

// Whether this process waits for its copies (the first worker does, to tell how an
// episode's worker died; the others ignore SIGCHLD and the kernel reaps their copies).
bool g_waits_for_copies = true;

// A fork()ed copy of this process that runs fn() and writes what it returns to a pipe.
struct Copy {
  pid_t pid = -1;
  int fd = -1;  // the pipe's reading end; -1 when the copy could not be made
};

template <typename Fn>
Copy start_copy(Fn fn) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Copy{};
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return Copy{};
  }
  if (pid == 0) {
    // A copy never outlives the worker: killed with it (a timeout kills the worker).
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    close(fds[0]);
    std::string out = fn();
    uint64_t n = out.size();
    std::string framed(reinterpret_cast<char *>(&n), sizeof n);
    framed += out;
    const char *p = framed.data();
    size_t left = framed.size();
    while (left > 0) {
      ssize_t w = write(fds[1], p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      p += w;
      left -= (size_t)w;
    }
    _exit(0);
  }
  close(fds[1]);
  return Copy{pid, fds[0]};
}

// What the copy wrote; *crashed when it died before writing it all (LLVM aborted in it).
std::string finish_copy(Copy c, bool *crashed) {
  *crashed = true;
  if (c.fd < 0) return "";
  std::string got;
  char buf[65536];
  for (;;) {
    ssize_t r = read(c.fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got.append(buf, (size_t)r);
  }
  close(c.fd);
  if (g_waits_for_copies) waitpid(c.pid, nullptr, 0);  // else the kernel reaps it
  uint64_t n = 0;
  if (got.size() >= sizeof n) memcpy(&n, got.data(), sizeof n);
  if (got.size() < sizeof n || got.size() - sizeof n != n) return "";
  *crashed = false;
  return got.substr(sizeof n);
}

// Whether fd has something to read (or is at its end) before deadline (now_ns's clock).
bool readable_by(int fd, uint64_t deadline) {
  for (;;) {
    uint64_t now = now_ns();
    if (now >= deadline) return false;
    struct pollfd p = {fd, POLLIN, 0};
    int ms = (int)((deadline - now + 999999) / 1000000);
    int r = poll(&p, 1, ms);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return true;  // let the read find out
  }
}

template <typename Fn>
std::string in_a_copy(Fn fn, bool *crashed) {
  return finish_copy(start_copy(fn), crashed);
}

// The first worker waits for the copies it forks for episodes (the others ignore SIGCHLD):
// the exit status of each, kept for a while, says how an episode's worker died.
std::vector<std::pair<pid_t, int>> g_exits;

void remember_exit(pid_t pid, int wstatus) {
  g_exits.emplace_back(pid, wstatus);
  if (g_exits.size() > 256) g_exits.erase(g_exits.begin());
}

void reap() {
  int wstatus;
  pid_t pid;
  while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) remember_exit(pid, wstatus);
}

bool exit_status(pid_t pid, int *wstatus) {
  for (const auto &e : g_exits)
    if (e.first == pid) {
      *wstatus = e.second;
      return true;
    }
  if (pid <= 0 || waitpid(pid, wstatus, 0) != pid) return false;  // it is dying: killed
  remember_exit(pid, *wstatus);
  return true;
}

class Worker {
 public:
  explicit Worker(int fd) : chan_{fd} {}

  void serve() {
    Request req;
    std::string payload;
    for (;;) {
      int passed = -1;
      if (!chan_.receive(req, payload, &passed)) return;
      uint64_t start = now_ns();
      if (g_waits_for_copies) reap();
      Out out;
      int32_t status = kOk;
      uint32_t mask = 0;
      switch (req.command) {
        case kLoad:
          status = load(payload, req.argument != 0, out);
          break;
        case kRun:
          mask = req.argument;
          status = need_program(out) ? step_on(*prog_, payload, mask, out) : kError;
          break;
        case kReference:
          mask = req.argument;
          status = need_program(out) ? reference(payload, mask, out) : kError;
          break;
        case kTry:
          mask = req.argument;
          status = need_program(out) ? try_each(payload, mask, out) : kError;
          break;
        case kFork: {
          if (passed < 0) {
            status = kError;
            out.error("fork needs a socket");
            break;
          }
          pid_t pid = fork();
          if (pid == 0) {  // the copy serves the new socket
            signal(SIGCHLD, SIG_IGN);  // its own copies are never waited for
            g_waits_for_copies = false;
            close(chan_.fd);
            chan_.fd = passed;
            Out hello;
            hello.i64(getpid());
            hello.finish(kOk, 0, start);
            if (!chan_.write_all(hello.bytes.data(), hello.bytes.size())) _exit(0);
            continue;
          }
          close(passed);
          if (pid < 0) {
            status = kError;
            out.error("cannot fork the worker");
          } else {
            out.i64(pid);
          }
          break;
        }
        case kVersion: {
          unsigned major, minor, patch;
          LLVMGetVersion(&major, &minor, &patch);
          std::string v = std::to_string(major) + "." + std::to_string(minor) + "." +
                          std::to_string(patch);
          out.raw(v.data(), v.size());
          break;
        }
        case kStatus: {
          int64_t pid = 0;
          if (payload.size() == sizeof pid) memcpy(&pid, payload.data(), sizeof pid);
          int wstatus = 0;
          if (exit_status((pid_t)pid, &wstatus)) {
            out.i64(wstatus);
          } else {
            status = kError;
            out.error("no such copy");
          }
          break;
        }
        case kClose:
          out.finish(kOk, 0, start);
          chan_.write_all(out.bytes.data(), out.bytes.size());
          return;
        default:
          status = kError;
          out.error("unknown command " + std::to_string(req.command));
      }
      if (passed >= 0 && req.command != kFork) close(passed);
      out.finish(status, status == kOk ? mask : 0, start);
      if (!chan_.write_all(out.bytes.data(), out.bytes.size())) return;
    }
  }

 private:
  Channel chan_;
  std::unique_ptr<Program> prog_;
  std::string source_;  // the program as loaded, for references
  bool source_is_text_ = false;
  int64_t ic_[kInstCountDim];
  int64_t ap_[kAutophaseDim];

  bool need_program(Out &out) {
    if (prog_) return true;
    out.error("no program is loaded");
    return false;
  }

  int32_t load(const std::string &data, bool is_text, Out &out) {
    std::unique_ptr<Program> p = parse(data.data(), data.size(), is_text);
    if (!p) {
      out.error(g_error);
      return kError;
    }
    int64_t count = inst_count(*p);
    out.i64(count);
    if (count == 0) return kOk;  // an empty module is refused, and the old one kept
    prog_ = std::move(p);
    source_ = data;
    source_is_text_ = is_text;
    return kOk;
  }

  // The observations in mask-bit order; false (and an error message) if one fails.
  bool observe(Program &p, uint32_t mask, Out &out) {
    bool walk = mask & (kInstCount | kAutophase);
    if (walk) features(p, ic_, ap_);  // its TotalInsts is the instruction count
    if (mask & kIrInstructionCount) out.i64(walk ? ic_[0] : inst_count(p));
    if (mask & kInstCount) out.raw(ic_, sizeof ic_);
    if (mask & kAutophase) out.raw(ap_, sizeof ap_);
    if (mask & kIr) {
      char *text = LLVMPrintModuleToString(p.mod);
      out.blob(text, strlen(text));
      LLVMDisposeMessage(text);
    }
    if (mask & kBitcode) {
      LLVMMemoryBufferRef buf = LLVMWriteBitcodeToMemoryBuffer(p.mod);
      out.blob(LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
      LLVMDisposeMemoryBuffer(buf);
    }
    if (mask & kObjectTextSizeBytes) {
      bool crashed;
      std::string got = in_a_copy(
          [&] {
            int64_t size = text_size(p);
            return size >= 0 ? std::string(reinterpret_cast<char *>(&size), sizeof size)
                             : "error:" + g_error;
          },
          &crashed);
      if (crashed) {
        out.error("LLVM crashed while emitting object code");
        return false;
      }
      if (got.size() != sizeof(int64_t)) {
        out.error("emitting object code failed: " + got.substr(got.size() > 6 ? 6 : 0));
        return false;
      }
      out.raw(got.data(), got.size());
    }
    if (mask & kProgramGraph) {
      Graph g = program_graph(p);
      out.blob(reinterpret_cast<const char *>(g.nodes.data()), g.nodes.size() * 8);
      out.blob(reinterpret_cast<const char *>(g.edges.data()), g.edges.size() * 8);
    }
    return true;
  }

  // What a copy sends back: its status, then its reply's payload.
  static std::string packed(int32_t status, const Out &one) {
    return std::string(reinterpret_cast<const char *>(&status), sizeof status) +
           one.bytes.substr(sizeof(Reply));
  }

  // A copy's status and payload; false when it crashed before sending them.
  static bool unpacked(const std::string &got, bool crashed, int32_t *status,
                       std::string *body) {
    if (crashed || got.size() < sizeof *status) return false;
    memcpy(status, got.data(), sizeof *status);
    *body = got.substr(sizeof *status);
    return true;
  }

  // In a copy of this process, so that the episode's process state stays as it was.
  int32_t reference(const std::string &pipeline, uint32_t mask, Out &out) {
    bool crashed;
    std::string got = in_a_copy(
        [&] {
          Out one;
          int32_t status = kError;
          std::unique_ptr<Program> fresh =
              parse(source_.data(), source_.size(), source_is_text_);
          if (!fresh)
            one.error(g_error);
          else
            status = step_on(*fresh, pipeline, mask, one);
          return packed(status, one);
        },
        &crashed);
    int32_t status;
    std::string body;
    if (!unpacked(got, crashed, &status, &body)) {  // only the copy ended
      out.error("LLVM crashed while running the reference pipeline '" + pipeline + "'");
      return kCrashed;
    }
    out.raw(body.data(), body.size());
    return status;
  }

  int32_t step_on(Program &p, const std::string &pipeline, uint32_t mask, Out &out) {
    if (!pipeline.empty() && !run(p, pipeline)) {
      out.error("running '" + pipeline + "' failed: " + g_error);
      return kError;
    }
    return observe(p, mask, out) ? kOk : kError;
  }

  // Each pipeline on its own fork()ed copy of the module: per pipeline {i32 status, u64
  // length} and its observations (or its error message). A crash ends only its copy; at the
  // time limit the copies still running are killed and those left are not started (status
  // kTimedOut), so that this worker and its program live on.
  int32_t try_each(const std::string &payload, uint32_t mask, Out &out) {
    uint64_t limit = 0;
    if (payload.size() < sizeof limit) {
      out.error("a try request starts with its time limit");
      return kError;
    }
    memcpy(&limit, payload.data(), sizeof limit);
    uint64_t deadline = limit ? now_ns() + limit : 0;
    std::vector<std::string> pipelines;
    size_t start = sizeof limit;
    for (size_t i = start; i <= payload.size(); ++i)
      if (i == payload.size() || payload[i] == '\0') {
        pipelines.push_back(payload.substr(start, i - start));
        start = i + 1;
      }
    // As many copies at once as this process may use cores; results in request order.
    size_t width = g_cpus > 1 ? (size_t)g_cpus : 1;
    std::vector<Copy> running;
    size_t done = 0;
    bool late = false;
    auto entry = [&](int32_t status, const std::string &body) {
      out.raw(&status, sizeof status);
      out.blob(body.data(), body.size());
    };
    auto collect = [&](size_t i) {
      if (late || (deadline && !readable_by(running[i].fd, deadline))) {
        late = true;
        kill(running[i].pid, SIGKILL);
        bool crashed;
        finish_copy(running[i], &crashed);
        entry(kTimedOut, "out of time before '" + pipelines[i] + "' finished");
        return;
      }
      bool crashed;
      std::string got = finish_copy(running[i], &crashed);
      int32_t status;
      std::string body;
      if (!unpacked(got, crashed, &status, &body)) {
        status = kCrashed;
        body = "LLVM crashed while running '" + pipelines[i] + "'";
      }
      entry(status, body);
    };
    for (const std::string &pipeline : pipelines) {
      if (late) break;
      running.push_back(start_copy([&] {
        Out one;
        int32_t status = step_on(*prog_, pipeline, mask, one);
        return packed(status, one);
      }));
      if (running.size() - done >= width) collect(done++);
    }
    while (done < running.size()) collect(done++);
    for (size_t i = running.size(); i < pipelines.size(); ++i)
      entry(kTimedOut, "out of time before '" + pipelines[i] + "' started");
    return kOk;
  }
};

// ---- the floor: each part of a step, in this one process ---------------------------------

int profile(const char *path, int repeats) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    return 2;
  }
  std::string data;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  fclose(f);
  std::vector<std::string> pipelines;
  std::string line;
  int c;
  while ((c = getchar()) != EOF) {
    if (c == '\n') {
      pipelines.push_back(line);
      line.clear();
    } else {
      line.push_back((char)c);
    }
  }
  bool is_text = data.compare(0, 2, "BC") != 0 && data.compare(0, 4, "\xde\xc0\x17\x0b") != 0;
  int64_t ic[kInstCountDim], ap[kAutophaseDim];
  // Per episode, in seconds: set-up (drop analyses, parse the pipeline), the passes,
  // the instruction count, the features; the best episode of each is printed.
  double best[4] = {1e30, 1e30, 1e30, 1e30};
  double best_floor = 1e30;
  for (int r = 0; r < repeats; ++r) {
    std::unique_ptr<Program> p = parse(data.data(), data.size(), is_text);
    if (!p) {
      fprintf(stderr, "cannot load %s: %s\n", path, g_error.c_str());
      return 2;
    }
    double part[4] = {0, 0, 0, 0};
    for (const std::string &pipeline : pipelines) {
      uint64_t t0 = now_ns();
      PassMachinery &m = *p->passes;
      m.forget();
      ModulePassManager MPM;
      bool ok = pipeline.empty();
      if (!ok) {
        if (Error err = m.PB.parsePassPipeline(MPM, pipeline)) {
          fprintf(stderr, "bad pipeline %s: %s\n", pipeline.c_str(),
                  toString(std::move(err)).c_str());
          return 2;
        }
      }
      uint64_t t1 = now_ns();
      if (!ok) MPM.run(p->module(), m.MAM);
      m.forget();
      uint64_t t2 = now_ns();
      volatile int64_t count = inst_count(*p);
      (void)count;
      uint64_t t3 = now_ns();
      features(*p, ic, ap);
      uint64_t t4 = now_ns();
      part[0] += (t1 - t0) * 1e-9;
      part[1] += (t2 - t1) * 1e-9;
      part[2] += (t3 - t2) * 1e-9;
      part[3] += (t4 - t3) * 1e-9;
    }
    for (int i = 0; i < 4; ++i)
      if (part[i] < best[i]) best[i] = part[i];
    if (part[0] + part[1] < best_floor) best_floor = part[0] + part[1];
  }
  printf("{\"steps\": %zu, \"setup\": %.9f, \"passes\": %.9f, \"inst_count\": %.9f, "
         "\"features\": %.9f, \"floor\": %.9f}\n",
         pipelines.size(), best[0], best[1], best[2], best[3], best_floor);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
  if (argc == 4 && strcmp(argv[1], "--profile") == 0) return profile(argv[2], atoi(argv[3]));
  if (argc != 2) {
    fprintf(stderr, "usage: %s SOCKET-FD | --profile FILE REPEATS\n", argv[0]);
    return 2;
  }
  // Ctrl-C belongs to the user's process; a closed socket is an error, not a signal.
  signal(SIGINT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  prefer_short_slices();
  g_loadavg = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  cpu_set_t set;
  g_cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  Worker(atoi(argv[1])).serve();
  return 0;
}
