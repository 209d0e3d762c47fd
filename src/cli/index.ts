import { runAsProgram } from './main';

runAsProgram();
