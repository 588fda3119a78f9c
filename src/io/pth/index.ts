// PyTorch checkpoints (.pth, torch.save's zip format): read without executing anything, write for
// torch.load, and find the DINO head's prototypes in a loaded checkpoint.
export { PthError } from './errors.js';
export { PthTensor, PTH_DTYPES, type PthDtype, type PthTensorLike } from './tensor.js';
export { readPth, ALLOWED_GLOBALS, MAX_ELEMENTS, MAX_RANK, type ReadPthOptions } from './torch-load.js';
export { writePth, serializePth } from './torch-save.js';
export {
  findDinoHead,
  type DinoHead,
  type DinoHeadPlain,
  type DinoHeadWeightNorm,
  type FindDinoHeadOptions,
} from './dino-head.js';
