-- Python scripts: the agent runs them (python3, python or the py launcher), so the
-- catalog keeps them as a script type of their own.
alter table assemblies.assemblies drop constraint if exists assemblies_assembly_type_check;
alter table assemblies.assemblies add constraint assemblies_assembly_type_check
  check (assembly_type in ('powershell', 'batch', 'bash', 'python', 'workflow', 'ansible'));
