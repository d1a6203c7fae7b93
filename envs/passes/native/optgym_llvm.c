/* OptGym's in-process bridge to LLVM 19: parse, run new-pass-manager pipelines, and
 * extract features with one call each, so that the Python worker does a handful of
 * ctypes calls per step instead of one per instruction.
 *
 * Built on first use by optgym.envs.passes.native against Debian's libLLVM-19 and the
 * llvm-c headers (package llvm-19-dev). Everything here uses LLVM's stable C API only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/IRReader.h>
#include <llvm-c/Object.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#define OG_INSTCOUNT_DIM 70
#define OG_AUTOPHASE_DIM 56

typedef struct {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMTargetMachineRef tm; /* from the module's triple, as opt builds it; NULL if none */
  char diag[4096];         /* last error-severity diagnostic of the context */
} og_module;

static char og_last_error[8192];

static void og_set_error(const char *msg) {
  strncpy(og_last_error, msg ? msg : "unknown error", sizeof(og_last_error) - 1);
  og_last_error[sizeof(og_last_error) - 1] = 0;
}

const char *og_error(void) { return og_last_error; }

static void og_diag_handler(LLVMDiagnosticInfoRef info, void *opaque) {
  og_module *m = (og_module *)opaque;
  if (LLVMGetDiagInfoSeverity(info) != LLVMDSError) return;
  char *desc = LLVMGetDiagInfoDescription(info);
  strncpy(m->diag, desc, sizeof(m->diag) - 1);
  m->diag[sizeof(m->diag) - 1] = 0;
  LLVMDisposeMessage(desc);
}

int og_init(void) {
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
  return 0;
}

void og_llvm_version(unsigned *major, unsigned *minor, unsigned *patch) {
  LLVMGetVersion(major, minor, patch);
}

static LLVMTargetMachineRef og_make_tm(const char *triple) {
  LLVMTargetRef target;
  char *err = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &err)) {
    og_set_error(err);
    LLVMDisposeMessage(err);
    return NULL;
  }
  return LLVMCreateTargetMachine(target, triple, "", "", LLVMCodeGenLevelDefault, LLVMRelocDefault,
                                 LLVMCodeModelDefault);
}

void og_free(og_module *m) {
  if (!m) return;
  if (m->tm) LLVMDisposeTargetMachine(m->tm);
  if (m->mod) LLVMDisposeModule(m->mod);
  if (m->ctx) LLVMContextDispose(m->ctx);
  free(m);
}

/* Parse bitcode (is_text == 0) or textual IR and verify it. NULL on error, see og_error(). */
og_module *og_load(const char *data, size_t len, int is_text) {
  og_module *m = (og_module *)calloc(1, sizeof(og_module));
  m->ctx = LLVMContextCreate();
  LLVMContextSetDiagnosticHandler(m->ctx, og_diag_handler, m);
  LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(data, len, "input");
  if (is_text) {
    char *err = NULL;
    if (LLVMParseIRInContext(m->ctx, buf, &m->mod, &err)) { /* takes ownership of buf */
      og_set_error(err ? err : "cannot parse LLVM IR text");
      if (err) LLVMDisposeMessage(err);
      m->mod = NULL;
      og_free(m);
      return NULL;
    }
  } else {
    LLVMBool failed = LLVMParseBitcodeInContext2(m->ctx, buf, &m->mod);
    LLVMDisposeMemoryBuffer(buf);
    if (failed) {
      og_set_error(m->diag[0] ? m->diag : "not a valid LLVM bitcode file");
      m->mod = NULL;
      og_free(m);
      return NULL;
    }
  }
  char *verr = NULL;
  if (LLVMVerifyModule(m->mod, LLVMReturnStatusAction, &verr)) {
    og_set_error(verr);
    LLVMDisposeMessage(verr);
    og_free(m);
    return NULL;
  }
  if (verr) LLVMDisposeMessage(verr);
  const char *triple = LLVMGetTarget(m->mod);
  if (triple && triple[0]) m->tm = og_make_tm(triple); /* NULL leaves TTI generic, like opt */
  return m;
}

/* Run a new-pass-manager pipeline. 0 on success. */
int og_run(og_module *m, const char *pipeline) {
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  m->diag[0] = 0;
  LLVMErrorRef e = LLVMRunPasses(m->mod, pipeline, m->tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  if (e) {
    char *msg = LLVMGetErrorMessage(e);
    og_set_error(msg);
    LLVMDisposeErrorMessage(msg);
    return 1;
  }
  if (m->diag[0]) {
    og_set_error(m->diag);
    return 1;
  }
  return 0;
}

int64_t og_inst_count(og_module *m) {
  int64_t n = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(m->mod); f; f = LLVMGetNextFunction(f))
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b))
      for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) ++n;
  return n;
}

/* Index of an opcode in llvm/IR/Instruction.def order (Ret = 0 ... Freeze = 66): the order
 * of CompilerGym's InstCount vector after its three totals. */
static int og_opcode_index(LLVMOpcode op) {
  switch (op) {
    case LLVMRet: return 0;
    case LLVMBr: return 1;
    case LLVMSwitch: return 2;
    case LLVMIndirectBr: return 3;
    case LLVMInvoke: return 4;
    case LLVMResume: return 5;
    case LLVMUnreachable: return 6;
    case LLVMCleanupRet: return 7;
    case LLVMCatchRet: return 8;
    case LLVMCatchSwitch: return 9;
    case LLVMCallBr: return 10;
    case LLVMFNeg: return 11;
    case LLVMAdd: return 12;
    case LLVMFAdd: return 13;
    case LLVMSub: return 14;
    case LLVMFSub: return 15;
    case LLVMMul: return 16;
    case LLVMFMul: return 17;
    case LLVMUDiv: return 18;
    case LLVMSDiv: return 19;
    case LLVMFDiv: return 20;
    case LLVMURem: return 21;
    case LLVMSRem: return 22;
    case LLVMFRem: return 23;
    case LLVMShl: return 24;
    case LLVMLShr: return 25;
    case LLVMAShr: return 26;
    case LLVMAnd: return 27;
    case LLVMOr: return 28;
    case LLVMXor: return 29;
    case LLVMAlloca: return 30;
    case LLVMLoad: return 31;
    case LLVMStore: return 32;
    case LLVMGetElementPtr: return 33;
    case LLVMFence: return 34;
    case LLVMAtomicCmpXchg: return 35;
    case LLVMAtomicRMW: return 36;
    case LLVMTrunc: return 37;
    case LLVMZExt: return 38;
    case LLVMSExt: return 39;
    case LLVMFPToUI: return 40;
    case LLVMFPToSI: return 41;
    case LLVMUIToFP: return 42;
    case LLVMSIToFP: return 43;
    case LLVMFPTrunc: return 44;
    case LLVMFPExt: return 45;
    case LLVMPtrToInt: return 46;
    case LLVMIntToPtr: return 47;
    case LLVMBitCast: return 48;
    case LLVMAddrSpaceCast: return 49;
    case LLVMCleanupPad: return 50;
    case LLVMCatchPad: return 51;
    case LLVMICmp: return 52;
    case LLVMFCmp: return 53;
    case LLVMPHI: return 54;
    case LLVMCall: return 55;
    case LLVMSelect: return 56;
    case LLVMUserOp1: return 57;
    case LLVMUserOp2: return 58;
    case LLVMVAArg: return 59;
    case LLVMExtractElement: return 60;
    case LLVMInsertElement: return 61;
    case LLVMShuffleVector: return 62;
    case LLVMExtractValue: return 63;
    case LLVMInsertValue: return 64;
    case LLVMLandingPad: return 65;
    case LLVMFreeze: return 66;
    default: return -1;
  }
}

/* ---- a pointer -> int64 hash map (open addressing), for blocks and values ---- */
typedef struct {
  void **keys;
  int64_t *vals;
  size_t cap, len;
} og_map;

static void og_map_init(og_map *h, size_t hint) {
  size_t cap = 64;
  while (cap < hint * 2) cap <<= 1;
  h->keys = (void **)calloc(cap, sizeof(void *));
  h->vals = (int64_t *)calloc(cap, sizeof(int64_t));
  h->cap = cap;
  h->len = 0;
}

static void og_map_free(og_map *h) {
  free(h->keys);
  free(h->vals);
}

static size_t og_hash(void *p, size_t cap) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return (size_t)(x & (cap - 1));
}

static int64_t *og_map_slot(og_map *h, void *key, int insert) {
  if (insert && (h->len + 1) * 2 > h->cap) {
    og_map old = *h;
    og_map_init(h, old.cap);
    for (size_t i = 0; i < old.cap; ++i)
      if (old.keys[i]) *og_map_slot(h, old.keys[i], 1) = old.vals[i];
    og_map_free(&old);
  }
  size_t i = og_hash(key, h->cap);
  while (h->keys[i]) {
    if (h->keys[i] == key) return &h->vals[i];
    i = (i + 1) & (h->cap - 1);
  }
  if (!insert) return NULL;
  h->keys[i] = key;
  h->len++;
  return &h->vals[i];
}

/* InstCount (70: TotalInsts, TotalBlocks, TotalFuncs, then one count per opcode) and the
 * 56 Autophase features, in one walk over the module. Definitions follow the Autophase
 * paper's feature list as CompilerGym documents it; every function, declarations
 * included, counts towards TotalFuncs. */
void og_features(og_module *m, int64_t *ic, int64_t *ap) {
  memset(ic, 0, sizeof(int64_t) * OG_INSTCOUNT_DIM);
  memset(ap, 0, sizeof(int64_t) * OG_AUTOPHASE_DIM);
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
  og_map preds;
  og_map_init(&preds, 256);
  for (LLVMValueRef f = LLVMGetFirstFunction(m->mod); f; f = LLVMGetNextFunction(f)) {
    ic[2]++;
    ap[TotalFuncs]++;
    if (!LLVMGetFirstBasicBlock(f)) continue;
    /* predecessor counts with multiplicity, as LLVM's pred_iterator sees them */
    preds.len = 0;
    memset(preds.keys, 0, preds.cap * sizeof(void *));
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b))
      *og_map_slot(&preds, b, 1) = 0;
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b)) {
      LLVMValueRef t = LLVMGetBasicBlockTerminator(b);
      if (!t) continue;
      unsigned ns = LLVMGetNumSuccessors(t);
      for (unsigned s = 0; s < ns; ++s) (*og_map_slot(&preds, LLVMGetSuccessor(t, s), 1))++;
    }
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b)) {
      ic[1]++;
      ap[TotalBlocks]++;
      LLVMValueRef t = LLVMGetBasicBlockTerminator(b);
      unsigned ns = t ? LLVMGetNumSuccessors(t) : 0;
      int64_t np = *og_map_slot(&preds, b, 1);
      for (unsigned s = 0; s < ns; ++s) {
        ap[NumEdges]++;
        if (ns > 1 && *og_map_slot(&preds, LLVMGetSuccessor(t, s), 1) > 1) ap[CriticalCount]++;
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
      int first = 1;
      for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) {
        LLVMOpcode op = LLVMGetInstructionOpcode(i);
        int idx = og_opcode_index(op);
        ic[0]++;
        if (idx >= 0) ic[3 + idx]++;
        if (op == LLVMBr) {
          ap[BranchCount]++;
          if (!LLVMIsConditional(i)) ap[UncondBranches]++;
        }
        int nops = LLVMGetNumOperands(i);
        for (int k = 0; k < nops; ++k) {
          LLVMValueRef v = LLVMGetOperand(i, k);
          if (!v || !LLVMIsAConstantInt(v)) continue;
          LLVMTypeRef ty = LLVMTypeOf(v);
          unsigned w = LLVMGetIntTypeWidth(ty);
          if (w == 32) ap[const32Bit]++;
          else if (w == 64) ap[const64Bit]++;
          /* constants are uniqued per context, so pointer equality is value equality */
          if (v == LLVMConstInt(ty, 1, 0)) ap[numConstOnes]++;
          else if (v == LLVMConstNull(ty)) ap[numConstZeroes]++;
        }
        if (op == LLVMCall) {
          LLVMValueRef callee = LLVMGetCalledValue(i);
          if (callee && LLVMIsAFunction(callee)) {
            LLVMTypeRef rt = LLVMGetReturnType(LLVMGlobalGetValueType(callee));
            if (LLVMGetTypeKind(rt) == LLVMIntegerTypeKind) ap[returnInt]++;
          }
        }
        if (LLVMIsAUnaryInstruction(i)) ap[testUnary]++;
        if (LLVMIsABinaryOperator(i) &&
            (LLVMIsAConstant(LLVMGetOperand(i, 0)) || LLVMIsAConstant(LLVMGetOperand(i, 1))))
          ap[binaryConstArg]++;
        if (op == LLVMPHI) {
          if (first) ap[BeginPhi]++;
          phis++;
          int64_t inc = LLVMCountIncoming(i);
          ap[ArgsPhi] += inc;
          bbargs += inc;
        }
        first = 0;
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
  og_map_free(&preds);
  /* opcode counters, by InstCount index + 3 */
  ap[NumAShrInst] = ic[3 + 26];
  ap[NumAddInst] = ic[3 + 12];
  ap[NumAllocaInst] = ic[3 + 30];
  ap[NumAndInst] = ic[3 + 27];
  ap[NumBitCastInst] = ic[3 + 48];
  ap[NumBrInst] = ic[3 + 1];
  ap[NumCallInst] = ic[3 + 55];
  ap[NumGetElementPtrInst] = ic[3 + 33];
  ap[NumICmpInst] = ic[3 + 52];
  ap[NumLShrInst] = ic[3 + 25];
  ap[NumLoadInst] = ic[3 + 31];
  ap[NumMulInst] = ic[3 + 16];
  ap[NumOrInst] = ic[3 + 28];
  ap[NumPHIInst] = ic[3 + 54];
  ap[NumRetInst] = ic[3 + 0];
  ap[NumSExtInst] = ic[3 + 39];
  ap[NumSelectInst] = ic[3 + 56];
  ap[NumShlInst] = ic[3 + 24];
  ap[NumStoreInst] = ic[3 + 32];
  ap[NumSubInst] = ic[3 + 14];
  ap[NumTruncInst] = ic[3 + 37];
  ap[NumXorInst] = ic[3 + 29];
  ap[NumZExtInst] = ic[3 + 38];
  ap[TotalInsts] = ic[0];
  /* memory instructions: GEP, load, store, call, invoke, alloca */
  ap[TotalMemInst] = ic[3 + 33] + ic[3 + 31] + ic[3 + 32] + ic[3 + 55] + ic[3 + 4] + ic[3 + 30];
}

/* Size in bytes of the .text sections of the object code for the module (codegen at -O2,
 * llc's default). The caller runs this in a forked child: codegen rewrites the IR. */
int64_t og_text_size(og_module *m) {
  LLVMTargetMachineRef tm = m->tm;
  char *err = NULL;
  if (!tm) {
    char *triple = LLVMGetDefaultTargetTriple();
    tm = og_make_tm(triple);
    LLVMSetTarget(m->mod, triple);
    LLVMDisposeMessage(triple);
    if (!tm) return -1;
  }
  LLVMMemoryBufferRef obj = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, m->mod, LLVMObjectFile, &err, &obj)) {
    og_set_error(err);
    LLVMDisposeMessage(err);
    return -1;
  }
  LLVMBinaryRef bin = LLVMCreateBinary(obj, m->ctx, &err);
  if (!bin) {
    og_set_error(err);
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

/* The module as IR text; free with og_dispose_message. */
char *og_print(og_module *m) { return LLVMPrintModuleToString(m->mod); }
void og_dispose_message(char *s) { LLVMDisposeMessage(s); }

/* The module as bitcode; returns a buffer handle, read with og_buffer_*. */
LLVMMemoryBufferRef og_bitcode(og_module *m) { return LLVMWriteBitcodeToMemoryBuffer(m->mod); }
const char *og_buffer_start(LLVMMemoryBufferRef b) { return LLVMGetBufferStart(b); }
size_t og_buffer_size(LLVMMemoryBufferRef b) { return LLVMGetBufferSize(b); }
void og_buffer_free(LLVMMemoryBufferRef b) { LLVMDisposeMemoryBuffer(b); }

/* ---- program graph (ProGraML-style) ----
 * Nodes: 0 = instruction (text = opcode index), 1 = variable (instruction result,
 * argument or global variable; text = LLVM type kind), 2 = constant (text = type kind).
 * Edges: 0 = control, 1 = data, 2 = call; each with the operand position.
 * Output arrays are malloc'd; free with og_graph_free. */
typedef struct {
  int64_t *nodes; /* n_nodes x 3: kind, text, function index */
  int64_t n_nodes, cap_nodes;
  int64_t *edges; /* n_edges x 4: src, dst, flow, position */
  int64_t n_edges, cap_edges;
} og_graph;

static int64_t og_graph_node(og_graph *g, int64_t kind, int64_t text, int64_t fn) {
  if (g->n_nodes == g->cap_nodes) {
    g->cap_nodes = g->cap_nodes ? g->cap_nodes * 2 : 1024;
    g->nodes = (int64_t *)realloc(g->nodes, sizeof(int64_t) * 3 * g->cap_nodes);
  }
  int64_t *n = g->nodes + 3 * g->n_nodes;
  n[0] = kind;
  n[1] = text;
  n[2] = fn;
  return g->n_nodes++;
}

static void og_graph_edge(og_graph *g, int64_t src, int64_t dst, int64_t flow, int64_t pos) {
  if (g->n_edges == g->cap_edges) {
    g->cap_edges = g->cap_edges ? g->cap_edges * 2 : 2048;
    g->edges = (int64_t *)realloc(g->edges, sizeof(int64_t) * 4 * g->cap_edges);
  }
  int64_t *e = g->edges + 4 * g->n_edges++;
  e[0] = src;
  e[1] = dst;
  e[2] = flow;
  e[3] = pos;
}

static int64_t og_value_node(og_graph *g, og_map *values, LLVMValueRef v, int64_t fn) {
  int64_t *slot = og_map_slot(values, v, 0);
  if (slot) return *slot;
  int kind = (LLVMIsAConstant(v) && !LLVMIsAGlobalVariable(v)) ? 2 : 1;
  int64_t id = og_graph_node(g, kind, LLVMGetTypeKind(LLVMTypeOf(v)), kind == 2 ? -1 : fn);
  *og_map_slot(values, v, 1) = id;
  return id;
}

og_graph *og_graph_build(og_module *m) {
  og_graph *g = (og_graph *)calloc(1, sizeof(og_graph));
  og_map insts, values, entries;
  og_map_init(&insts, 4096);
  og_map_init(&values, 4096);
  og_map_init(&entries, 256);
  /* pass 1: an instruction node per instruction, in module order */
  int64_t fn = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(m->mod); f; f = LLVMGetNextFunction(f), ++fn) {
    int first = 1;
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b))
      for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) {
        int64_t id = og_graph_node(g, 0, og_opcode_index(LLVMGetInstructionOpcode(i)), fn);
        *og_map_slot(&insts, i, 1) = id;
        if (first) *og_map_slot(&entries, f, 1) = id;
        first = 0;
      }
  }
  /* pass 2: control, data and call edges */
  fn = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(m->mod); f; f = LLVMGetNextFunction(f), ++fn) {
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b)) {
      for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) {
        int64_t id = *og_map_slot(&insts, i, 0);
        LLVMValueRef next = LLVMGetNextInstruction(i);
        if (next) og_graph_edge(g, id, *og_map_slot(&insts, next, 0), 0, 0);
        if (LLVMIsATerminatorInst(i)) {
          unsigned ns = LLVMGetNumSuccessors(i);
          for (unsigned s = 0; s < ns; ++s) {
            LLVMValueRef head = LLVMGetFirstInstruction(LLVMGetSuccessor(i, s));
            if (head) og_graph_edge(g, id, *og_map_slot(&insts, head, 0), 0, (int64_t)s);
          }
        }
        LLVMOpcode op = LLVMGetInstructionOpcode(i);
        LLVMValueRef callee = NULL;
        if (op == LLVMCall || op == LLVMInvoke || op == LLVMCallBr) {
          callee = LLVMGetCalledValue(i);
          if (callee && LLVMIsAFunction(callee)) {
            int64_t *entry = og_map_slot(&entries, callee, 0);
            if (entry) og_graph_edge(g, id, *entry, 2, 0);
            /* returns of the callee flow back to the call site */
            for (LLVMBasicBlockRef cb = LLVMGetFirstBasicBlock(callee); cb;
                 cb = LLVMGetNextBasicBlock(cb)) {
              LLVMValueRef t = LLVMGetBasicBlockTerminator(cb);
              if (t && LLVMGetInstructionOpcode(t) == LLVMRet)
                og_graph_edge(g, *og_map_slot(&insts, t, 0), id, 2, 0);
            }
          } else {
            callee = NULL;
          }
        }
        int nops = LLVMGetNumOperands(i);
        for (int k = 0; k < nops; ++k) {
          LLVMValueRef v = LLVMGetOperand(i, k);
          if (!v || v == callee || LLVMValueIsBasicBlock(v))
            continue;
          if (LLVMIsAInstruction(v) || LLVMIsAArgument(v) || LLVMIsAConstant(v)) {
            int64_t src = og_value_node(g, &values, v, fn);
            og_graph_edge(g, src, id, 1, k);
          }
        }
        if (LLVMGetTypeKind(LLVMTypeOf(i)) != LLVMVoidTypeKind) {
          int64_t dst = og_value_node(g, &values, i, fn);
          og_graph_edge(g, id, dst, 1, 0);
        }
      }
    }
  }
  og_map_free(&insts);
  og_map_free(&values);
  og_map_free(&entries);
  return g;
}

int64_t og_graph_num_nodes(og_graph *g) { return g->n_nodes; }
int64_t og_graph_num_edges(og_graph *g) { return g->n_edges; }
const int64_t *og_graph_nodes(og_graph *g) { return g->nodes; }
const int64_t *og_graph_edges(og_graph *g) { return g->edges; }
void og_graph_free(og_graph *g) {
  if (!g) return;
  free(g->nodes);
  free(g->edges);
  free(g);
}
